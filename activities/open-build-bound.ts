import type { Queryable } from '../lib/db';
import { countOpenBuildWorkflows } from './records/builds';

/** How often a start activity that found no room counts the open build workflows again. */
const RECOUNT_MS = 1_000;

/**
 * The bound on build workflows open at once (RINGMASTER_MAX_OPEN_BUILDS; issue 6): started and not
 * finished, counted in PostgreSQL (`countOpenBuildWorkflows`). Starting every build of a 10,000-build
 * evaluation at once opened more workflows than the worker caches (evicted runs replay their history on
 * each task) while 2 build slots ran a few of them; with the bound the others stay `pending`, with
 * their start row, until builds finish.
 *
 * The count is global (every evaluation's builds, restarts too), so concurrent evaluations share the
 * room; each start activity takes at most the room it counted, and two counting at once may each take
 * it (briefly over the bound by at most one round of the other).
 */
export class OpenBuildBound {
  private claimable = 0;
  private countedAt = -Infinity;
  private recount: Promise<void> | undefined;

  constructor(
    private readonly db: Queryable,
    /** 0: no bound. */
    readonly limit: number,
  ) {}

  /** How many more build workflows may start now (Infinity without a bound). */
  async room(): Promise<number> {
    if (this.limit === 0) return Infinity;
    return Math.max(0, this.limit - (await countOpenBuildWorkflows(this.db)));
  }

  /** The last count's room, less what was taken since (`took`), and when it was counted. */
  private counted: { room: number; at: number } | undefined;

  /**
   * The room, counted again only when the last count is older than `maxAgeMs` or used up (`took`): for
   * a start loop that goes round often, one count every `maxAgeMs` instead of one per round. The room
   * it answers between counts is what was counted less what this caller started since; builds that
   * finished meanwhile are seen by the next count.
   */
  async recentRoom(maxAgeMs: number): Promise<number> {
    if (this.limit === 0) return Infinity;
    if (!this.counted || this.counted.room <= 0 || Date.now() - this.counted.at >= maxAgeMs) this.counted = { room: await this.room(), at: Date.now() };
    return this.counted.room;
  }

  /** Builds the caller started out of `recentRoom`'s answer. */
  took(n: number): void {
    if (this.counted) this.counted.room -= n;
  }

  /** Waits until there is room (counting again every RECOUNT_MS, calling `tick` meanwhile, e.g. to heartbeat); answers it. */
  async waitForRoom(tick: () => void, signal?: AbortSignal): Promise<number> {
    for (;;) {
      const room = await this.room();
      this.counted = { room, at: Date.now() };
      if (room > 0) return room;
      tick();
      if (signal?.aborted) throw signal.reason ?? new Error('cancelled');
      await new Promise((resolve) => setTimeout(resolve, RECOUNT_MS));
    }
  }

  /**
   * For starts that go out one by one (the evaluation's own, while the evaluator is silent): takes one
   * place if there is room, counting again at most every RECOUNT_MS; false when there is none (the build
   * keeps its start row for the start activity). `uncounted()` is how many builds the caller started
   * that the count cannot see yet (their start rows not deleted yet).
   */
  async tryClaim(uncounted: () => number): Promise<boolean> {
    if (this.limit === 0) return true;
    // Concurrent callers wait for the same count.
    while (this.recount) await this.recount;
    if (this.claimable <= 0 && Date.now() - this.countedAt >= RECOUNT_MS) {
      // Builds uncounted when the count began may have become countable before its snapshot, or after it:
      // both sides are subtracted (a few too many at worst, until the next count), never neither.
      const uncountedBefore = uncounted();
      this.recount = this.room()
        .then((room) => {
          this.claimable = room - uncountedBefore - uncounted();
          this.countedAt = Date.now();
        })
        .finally(() => {
          this.recount = undefined;
        });
      await this.recount;
    }
    if (this.claimable <= 0) return false;
    this.claimable--;
    return true;
  }
}
