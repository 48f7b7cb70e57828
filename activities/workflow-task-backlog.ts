/** How often the workflow task backlog is asked of the server (at most). */
const RECOUNT_MS = 200;

/**
 * Holds build workflow starts back while the workflow task queue has a backlog (issue 6;
 * RINGMASTER_MAX_WORKFLOW_TASK_BACKLOG). A build whose result was recorded before its workflow started
 * (its derivation built in its evaluation's batch while it was held back) is not open in PostgreSQL's
 * eyes, so the open-build bound lets its workflow start at once; in the 10,000-job benchmark about 1,900
 * such workflows waited at once for their one workflow task. The server hands tasks out in order, so the
 * derivation workflows of the last builds waited three minutes behind them, with the worker idle at the
 * end (the backlog drained at 2–20 tasks a second). With this gate, starts go out only while fewer than
 * `limit` workflow tasks wait: a workflow task that does work never waits behind more than that.
 *
 * The server's count is asked at most every RECOUNT_MS for every caller at once; in between, the room is
 * the last count's less what was taken since. A server that does not report a backlog is not gated.
 */
export class WorkflowTaskBacklogGate {
  private room = 0;
  private countedAt = -Infinity;
  private recount: Promise<void> | undefined;
  private reported = true;

  constructor(
    /** The backlog as the server reports it, or null when it does not. */
    private readonly backlog: () => Promise<number | null>,
    /** 0: no gate. */
    readonly limit: number,
  ) {}

  /**
   * Takes up to `wanted` places, waiting (and calling `tick` on each wait) while there is none; answers
   * how many it took, at least 1 when `wanted` is.
   */
  async take(wanted: number, tick: () => void = () => undefined, signal?: AbortSignal): Promise<number> {
    if (this.limit === 0 || wanted <= 0) return Math.max(0, wanted);
    for (;;) {
      while (this.recount) await this.recount;
      if (Date.now() - this.countedAt >= RECOUNT_MS) {
        this.recount = this.count().finally(() => {
          this.recount = undefined;
        });
        await this.recount;
      }
      if (!this.reported) return wanted;
      if (this.room > 0) {
        const taken = Math.min(this.room, wanted);
        this.room -= taken;
        return taken;
      }
      tick();
      if (signal?.aborted) throw signal.reason ?? new Error('cancelled');
      await new Promise((resolve) => setTimeout(resolve, Math.max(10, this.countedAt + RECOUNT_MS - Date.now())));
    }
  }

  private async count(): Promise<void> {
    // A failed question (the server busy) is taken as no answer: starts go on, as they did before the gate.
    const backlog = await this.backlog().catch(() => null);
    this.reported = backlog !== null;
    this.room = backlog === null ? 0 : Math.max(0, this.limit - backlog);
    this.countedAt = Date.now();
  }
}
