import { Context } from '@temporalio/activity';
import { isDatabaseUnavailable } from '../lib/database-unavailable';

/**
 * Activities outlive a PostgreSQL restart: a write that finds the database down waits for it (with
 * backoff, heartbeating, until the activity is cancelled or its time is nearly up) and tries again,
 * instead of spending one of the activity's few Temporal attempts, whose failure would end a build
 * with the wrong status. Errors about the query itself are thrown at once as before.
 */

const FIRST_WAIT_MS = 200;
const LONGEST_WAIT_MS = 2_000;
/** Longest a single activity waits for the database before its Temporal retry policy takes over. */
const LONGEST_OUTAGE_MS = 120_000;

function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined; // called outside an activity (a unit test, a script)
  }
}

/** How long this call may wait for the database: the outage budget, within the activity's start-to-close timeout. */
function waitBudgetMs(ctx: Context | undefined): number {
  const timeout = ctx?.info.startToCloseTimeoutMs;
  if (!timeout) return LONGEST_OUTAGE_MS;
  return Math.max(0, Math.min(LONGEST_OUTAGE_MS, timeout - 5_000));
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Runs `work`, running it again while it fails because the database cannot be reached. */
export async function whileDatabaseUnavailable<T>(work: () => Promise<T>): Promise<T> {
  const ctx = activityContext();
  const deadline = Date.now() + waitBudgetMs(ctx);
  let wait = FIRST_WAIT_MS;
  for (;;) {
    try {
      return await work();
    } catch (err) {
      const signal = ctx?.cancellationSignal;
      if (!isDatabaseUnavailable(err) || Date.now() + wait > deadline || signal?.aborted) throw err;
      if (ctx && !ctx.info.isLocal) ctx.heartbeat('waiting for the database');
      await pause(wait, signal);
      if (signal?.aborted) throw err;
      wait = Math.min(wait * 2, LONGEST_WAIT_MS);
    }
  }
}

type AsyncFunctions = Record<string, (...args: never[]) => Promise<unknown>>;

/**
 * The same activities, each of which outlives a database restart (see whileDatabaseUnavailable).
 * Only for activities whose database work is safe to run again, which is what Temporal's own retry
 * of an activity already assumes.
 */
export function outlivingDatabaseRestarts<T extends AsyncFunctions>(activities: T): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(activities)) {
    wrapped[name] = (...args: never[]) => whileDatabaseUnavailable(() => fn(...args));
  }
  return wrapped as T;
}
