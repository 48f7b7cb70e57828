import { ActivityNotFoundError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import type { Db } from '../lib/db';
import type { Logger } from '../lib/logger';
import { hasCertainlyEnded, thisProcessIdentity, type ProcessIdentity } from '../lib/process-identity';
import { dropLapsedLeases, dropWorkerLease, forgetRunningActivity, recordRunningActivity, renewWorkerLease, runningActivities } from '../activities/records/running-activities';

/**
 * A worker process that dies (kill -9, a crash, an out-of-memory kill) leaves its activities running in
 * Temporal's eyes until their heartbeat timeout runs out: 20 s for a batch or a step, 30 s for an
 * evaluation's build starts, 2 minutes for an evaluation. Another worker process of the same machine can
 * tell within seconds that the process has ended, and fail those attempts, so Temporal runs them again.
 *
 * - Each attempt of a (non-local) activity whose heartbeat timeout is at least RECORDED_HEARTBEAT_TIMEOUT_MS
 *   is recorded in `running_activities` with its task token and its process (`recordRunningActivities`,
 *   a worker interceptor), and deleted when it ends.
 * - Each worker process looks at those rows when it starts and then every ENDED_WORKER_SWEEP_MS
 *   (`watchForEndedWorkers`), and fails the attempts of a process that has certainly ended, once it has
 *   seen it ended for ENDED_WORKER_GRACE_MS.
 *
 * A process is judged ended in one of two ways:
 * - by its PID, when it ran on this host in this PID namespace (`lib/process-identity.ts`): at once, then
 *   failed after ENDED_WORKER_GRACE_MS;
 * - by its lease, wherever it ran (another container, another machine): each worker process renews a row
 *   in `worker_leases` every WORKER_LEASE_RENEW_MS, lasting the process's `RINGMASTER_WORKER_LEASE_SECONDS`
 *   (default 15) by PostgreSQL's clock (`keepWorkerLease`). Its attempts are recorded with the lease's key;
 *   once that lease has lapsed they are failed at once (the lease outlasts the grace: the process gave no
 *   sign of life for that long). Attempts recorded without a lease (a worker of older code) are never
 *   judged by lease.
 * A process that is alive but cannot reach the database for a whole lease loses its attempts as it would
 * at their heartbeat timeout: Temporal runs them again, and the old attempt learns at its next heartbeat
 * that it is over (the SDK cancels it). Failing by task token names one attempt: if that attempt is over
 * already (it timed out, and its retry runs), Temporal answers NotFound and nothing changes.
 */

/** Activities whose heartbeat timeout is shorter than this are not recorded: a dead worker costs them little. */
export const RECORDED_HEARTBEAT_TIMEOUT_MS = 10_000;
/** How often a worker process looks for the activities of ended worker processes. */
export const ENDED_WORKER_SWEEP_MS = 2_000;
/**
 * How long an attempt's process must have been seen ended before the attempt is failed. A batch on an SSH
 * builder outlives its worker by up to 5 s: the watcher on the builder sends its process group TERM when
 * the session is gone, and KILL 5 s later (`holdStdinOpen` in activities/realise/ssh-connection.ts). Its
 * retry must not start beside it (the builder's `max_jobs`).
 */
export const ENDED_WORKER_GRACE_MS = 6_000;
/** How often a worker process renews its lease. */
export const WORKER_LEASE_RENEW_MS = 2_000;
/** Leases that lapsed longer ago than this, and that no recorded attempt names, are deleted by the sweeps. */
export const LAPSED_LEASE_KEPT_MS = 60 * 60 * 1000;
/** The type of the failure given to an attempt whose worker process ended. */
export const WORKER_PROCESS_ENDED = 'WorkerProcessEnded';

/** The key of the lease the process `owner` keeps: every part of its identity. */
export function leaseKeyOf(owner: ProcessIdentity): string {
  return [owner.host, owner.bootId, owner.pidNamespace, owner.pid, owner.startTicks].join('|');
}

export interface WorkerLease {
  key: string;
  /** Stops renewing it and gives it up (a clean stop: the process's activities have ended). */
  stop(): Promise<void>;
}

/**
 * Writes the lease of the process `owner` now (a failure is logged; the next renewal tries again) and renews
 * it every `renewMs`, each time lasting `leaseMs` from PostgreSQL's now. Renewals that fail are logged once
 * until one succeeds again.
 */
export async function keepWorkerLease(deps: { db: Db; logger: Logger }, owner: ProcessIdentity, leaseMs: number, renewMs = WORKER_LEASE_RENEW_MS): Promise<WorkerLease> {
  const key = leaseKeyOf(owner);
  let failing = false;
  const renew = () =>
    renewWorkerLease(deps.db, key, owner, leaseMs).then(
      () => {
        if (failing) deps.logger.info('the worker lease is renewed again');
        failing = false;
      },
      (err: Error) => {
        if (!failing) deps.logger.warn(`could not renew this worker process's lease (${err.message}): if it lapses, other workers run this process's activities again`);
        failing = true;
      },
    );
  await renew();
  const stopRenewing = inRounds(renew, renewMs, { startNow: false });
  return {
    key,
    async stop() {
      await stopRenewing();
      await dropWorkerLease(deps.db, key).catch((err: Error) => deps.logger.warn(`could not give up this worker process's lease: ${err.message}`));
    },
  };
}

/**
 * The worker interceptor that records each long-heartbeat activity attempt while it runs, in the process
 * `owner`, with the key of the lease that process keeps (`keepWorkerLease`; null when it keeps none).
 */
export function recordRunningActivities(db: Db, logger: Logger, owner: ProcessIdentity | undefined = thisProcessIdentity(), leaseKey: string | null = null): ActivityInterceptorsFactory {
  return (ctx) => ({
    inbound: {
      async execute(input, next) {
        const info = ctx.info;
        if (!owner || info.isLocal || (info.heartbeatTimeoutMs ?? 0) < RECORDED_HEARTBEAT_TIMEOUT_MS) return next(input);
        // Written beside the activity's start, not before it: the activity does not wait for it.
        const recorded = recordRunningActivity(db, {
          taskToken: info.taskToken,
          activityType: info.activityType,
          activityId: info.activityId,
          workflowId: info.workflowExecution?.workflowId ?? '',
          attempt: info.attempt,
          owner,
          leaseKey,
        }).then(
          () => true,
          (err: Error) => {
            logger.warn(`could not record the running ${info.activityType} activity (${err.message}): if this worker process dies, Temporal retries it after its heartbeat timeout`);
            return false;
          },
        );
        try {
          return await next(input);
        } finally {
          if (await recorded) await forgetRunningActivity(db, info.taskToken).catch(() => undefined);
        }
      },
    },
  });
}

/**
 * Fails each recorded attempt whose worker process has ended, as judged from the process `self`, and
 * forgets it: a process of this host and PID namespace that has certainly ended (with `wait`, only once it
 * was first seen ended at least `graceMs` ago; it notes there when it first saw each), or a process whose
 * lease (`leaseMs` when it never wrote one) has lapsed, at once; never this process's own attempts by lease.
 * Answers how many it failed.
 */
export async function failActivitiesOfEndedWorkers(
  deps: { db: Db; client: Client; logger: Logger },
  self: ProcessIdentity,
  opts: { leaseMs: number; wait?: { seenEnded: Map<string, number>; graceMs: number } },
): Promise<number> {
  const { wait } = opts;
  const selfKey = leaseKeyOf(self);
  let failed = 0;
  const recorded = (await runningActivities(deps.db, opts.leaseMs)).map((a) => ({ ...a, key: Buffer.from(a.taskToken).toString('base64') }));
  if (wait) {
    // Attempts no longer recorded (ended, or failed by another worker) are forgotten here too.
    const keys = new Set(recorded.map((a) => a.key));
    for (const key of wait.seenEnded.keys()) if (!keys.has(key)) wait.seenEnded.delete(key);
  }
  for (const a of recorded) {
    const lapsed = a.leaseLapsed && a.leaseKey !== selfKey;
    if (!lapsed) {
      if (!hasCertainlyEnded(a.owner, self)) continue;
      if (wait) {
        const since = wait.seenEnded.get(a.key) ?? Date.now();
        wait.seenEnded.set(a.key, since);
        if (Date.now() - since < wait.graceMs) continue;
      }
    }
    wait?.seenEnded.delete(a.key);
    const who = `pid ${a.owner.pid} on ${a.owner.host}${lapsed ? ', whose lease lapsed' : ''}`;
    try {
      await deps.client.activity.fail(
        a.taskToken,
        ApplicationFailure.retryable(`the worker process that ran ${a.activityType} (attempt ${a.attempt}, ${who}) has ended; it runs again`, WORKER_PROCESS_ENDED),
      );
      failed++;
      deps.logger.warn(
        { activityType: a.activityType, activityId: a.activityId, workflowId: a.workflowId, attempt: a.attempt, ownerPid: a.owner.pid, ownerHost: a.owner.host, leaseLapsed: lapsed },
        `${a.activityType} of ${a.workflowId} was running in a worker process that has ended (${who}): failed it, so it runs again now`,
      );
    } catch (err) {
      if (!(err instanceof ActivityNotFoundError)) {
        deps.logger.warn(`could not fail ${a.activityType} of ${a.workflowId}, left by an ended worker process (${who}): ${(err as Error).message}`);
        continue;
      }
    }
    await forgetRunningActivity(deps.db, a.taskToken);
  }
  return failed;
}

/**
 * Runs `failActivitiesOfEndedWorkers` at once and then every `everyMs`, one round at a time, until the
 * returned stop is called (which waits for a round under way); an attempt of a process of this host is
 * failed once it has been seen ended for `graceMs`, one whose lease lapsed at once. Every 30 rounds it also
 * deletes leases that lapsed over an hour ago. A round that fails (the database or Temporal unavailable) is
 * logged, and the next one tries again.
 */
export function watchForEndedWorkers(
  deps: { db: Db; client: Client; logger: Logger },
  opts: { self: ProcessIdentity | undefined; leaseMs: number; everyMs?: number; graceMs?: number },
): () => Promise<void> {
  // Where /proc does not tell who this process is, no other process can be judged from it.
  const self = opts.self;
  if (!self) return async () => undefined;
  const wait = { seenEnded: new Map<string, number>(), graceMs: opts.graceMs ?? ENDED_WORKER_GRACE_MS };
  let rounds = 0;
  return inRounds(
    () => {
      const tidy = rounds++ % 30 === 0;
      return failActivitiesOfEndedWorkers(deps, self, { leaseMs: opts.leaseMs, wait })
        .then(async () => {
          if (tidy) await dropLapsedLeases(deps.db, LAPSED_LEASE_KEPT_MS);
        })
        .then(
          () => undefined,
          (err: Error) => deps.logger.warn(`looking for the activities of ended worker processes failed: ${err.message}`),
        );
    },
    opts.everyMs ?? ENDED_WORKER_SWEEP_MS,
    { startNow: true },
  );
}

/**
 * Runs `round` (which must not reject) every `everyMs` after the previous one ended, one at a time, at once
 * first when `startNow`, until the returned stop is called, which waits for a round under way. Its timers do
 * not keep the process alive.
 */
function inRounds(round: () => Promise<void>, everyMs: number, opts: { startNow: boolean }): () => Promise<void> {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> = Promise.resolve();
  const schedule = () => {
    timer = setTimeout(next, everyMs);
    timer.unref();
  };
  const next = () => {
    if (stopped) return;
    current = round().finally(() => {
      if (!stopped) schedule();
    });
  };
  if (opts.startNow) next();
  else schedule();
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await current;
  };
}
