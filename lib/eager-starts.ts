/**
 * Which build starts ask for eager workflow start (issue 6).
 *
 * An eager start hands the new workflow's first task straight back to the worker in the process that
 * started it, in the start RPC's response: the server neither queues that task nor matches it to a poll,
 * which saves about a fifth of the Temporal server's CPU per build on the DAG benchmark. It also keeps
 * that task on this worker, so with several workers polling the same task queue this process takes only
 * its share eagerly (one start in N, N the workers seen polling), and the others go through the task
 * queue to whichever worker polls first. The count is refreshed every `refreshMs`; when it cannot be
 * had, no start asks for eagerness (the plain path always works).
 *
 * The SDK only honours the request when the client shares the worker's `NativeConnection`, and the server
 * only when this worker has a free workflow task slot; otherwise the start goes the plain way.
 */
export class EagerStartShare {
  private workers: number | undefined = undefined;
  private checkedAt = -Infinity;
  private refreshing: Promise<void> | undefined;
  private turn = 0;

  constructor(
    private readonly countWorkers: () => Promise<number>,
    private readonly refreshMs = 15_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether the next start should ask for eagerness. */
  async next(): Promise<boolean> {
    if (this.now() - this.checkedAt >= this.refreshMs) await (this.refreshing ??= this.refresh());
    const n = this.workers;
    if (n === undefined) return false;
    return this.turn++ % Math.max(1, n) === 0;
  }

  private async refresh(): Promise<void> {
    try {
      this.workers = await this.countWorkers();
    } catch {
      this.workers = undefined;
    } finally {
      this.checkedAt = this.now();
      this.refreshing = undefined;
    }
  }
}

/** A poller not heard from for this long is taken for a worker that has gone. */
export const LIVE_POLLER_MS = 90_000;

/** The distinct worker identities among a task queue's pollers seen within `LIVE_POLLER_MS` of `now`. */
export function liveWorkerIdentities(pollers: Array<{ identity?: string | null; lastAccessTime?: Date | null }>, now: Date): number {
  const ids = new Set<string>();
  for (const p of pollers) {
    if (!p.identity) continue;
    if (p.lastAccessTime && now.getTime() - p.lastAccessTime.getTime() > LIVE_POLLER_MS) continue;
    ids.add(p.identity);
  }
  return ids.size;
}
