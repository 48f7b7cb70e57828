import type { Queryable } from '../lib/db';
import { countOpenBuildWorkflows } from './records/builds';

/** How often the open build workflows are counted again (at most). */
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
  /** The last count's room, less the places taken since. */
  private claimable = 0;
  private countedAt = -Infinity;
  private recount: Promise<void> | undefined;

  constructor(
    private readonly db: Queryable,
    /** 0: no bound. */
    readonly limit: number,
  ) {}

  /** How many more build workflows may start now (Infinity without a bound), counted now. */
  async room(): Promise<number> {
    if (this.limit === 0) return Infinity;
    return Math.max(0, this.limit - (await countOpenBuildWorkflows(this.db)));
  }

  /**
   * Takes up to `wanted` places; answers how many it took (0: none is free). The open build workflows are
   * counted at most every RECOUNT_MS, for every caller at once; in between, the places are the last count's
   * room less what was taken since (builds that finished meanwhile are seen by the next count). So a start
   * loop that goes round often, or starts that go out one by one, count once a second, not once each.
   * `uncounted()` is how many builds the caller started that the count cannot see yet (their start rows not
   * deleted yet).
   */
  async claim(wanted: number, uncounted: () => number = () => 0): Promise<number> {
    if (this.limit === 0) return wanted;
    // Concurrent callers wait for the same count.
    while (this.recount) await this.recount;
    if (Date.now() - this.countedAt >= RECOUNT_MS) {
      // Taken as the count begins: no claim is granted while it runs, so no build joins them meanwhile; one
      // whose start row goes before the count's snapshot is subtracted twice (a place lost until the next
      // count), and none is missed (taken after the count, a build seen by neither would be).
      const notSeen = uncounted();
      this.recount = this.room()
        .then((room) => this.counted(room - notSeen))
        .finally(() => {
          this.recount = undefined;
        });
      await this.recount;
    }
    const taken = Math.max(0, Math.min(wanted, this.claimable));
    this.claimable -= taken;
    return taken;
  }

  /** Waits until there is room (counting again every RECOUNT_MS, calling `tick` meanwhile, e.g. to heartbeat). */
  async waitForRoom(tick: () => void, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const room = await this.room();
      this.counted(room);
      if (room > 0) return;
      tick();
      if (signal?.aborted) throw signal.reason ?? new Error('cancelled');
      await new Promise((resolve) => setTimeout(resolve, RECOUNT_MS));
    }
  }

  private counted(room: number): void {
    this.claimable = room;
    this.countedAt = Date.now();
  }
}
