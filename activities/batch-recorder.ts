/**
 * Writes what a producer (the evaluator's output reader) hands it in batches, one batch at a time,
 * behind the producer. A batch is at least `minBatch` items (or what is left at the end, or what has
 * waited `lingerMs` since the last item: a producer that stalls still sees its items written) and at
 * most `maxBatch`: while one batch is written the next ones accumulate, so a slow writer writes fewer,
 * larger batches instead of falling further behind. The producer waits only when `maxPending` items are
 * waiting, which bounds memory. The first failure stops the writing and is thrown by `add` or `end`.
 */
export class BatchRecorder<T> {
  private pending: T[] = [];
  private writing: Promise<void> | null = null;
  private ended = false;
  private failure: { error: unknown } | null = null;
  private lingering: NodeJS.Timeout | null = null;
  private lingered = false;

  constructor(
    private readonly limits: { minBatch: number; maxBatch: number; maxPending: number; lingerMs: number },
    private readonly write: (batch: T[]) => Promise<void>,
  ) {
    if (limits.minBatch < 1 || limits.maxBatch < limits.minBatch || limits.maxPending < limits.maxBatch) throw new Error('need 1 ≤ minBatch ≤ maxBatch ≤ maxPending');
  }

  /** Queues an item; waits only while `maxPending` items are waiting. */
  async add(item: T): Promise<void> {
    this.throwIfFailed();
    this.pending.push(item);
    this.linger();
    this.kick();
    while (this.pending.length >= this.limits.maxPending && this.writing) {
      await this.writing;
      this.throwIfFailed();
      this.kick();
    }
  }

  /** Writes what is left and waits for every write. */
  async end(): Promise<void> {
    this.ended = true;
    this.stopLingering();
    this.kick();
    while (this.writing) await this.writing;
    this.throwIfFailed();
  }

  /** Waits for the write in progress, if any, without writing more or throwing (after a producer's failure). */
  async abandon(): Promise<void> {
    this.stopLingering();
    this.pending = [];
    await this.writing;
  }

  private ready(): boolean {
    return this.pending.length >= this.limits.minBatch || ((this.ended || this.lingered) && this.pending.length > 0);
  }

  /** (Re)arms the timer that writes a short batch once no item has come for `lingerMs`. */
  private linger(): void {
    this.stopLingering();
    this.lingering = setTimeout(() => {
      this.lingering = null;
      this.lingered = true;
      this.kick();
    }, this.limits.lingerMs);
  }

  private stopLingering(): void {
    if (this.lingering) clearTimeout(this.lingering);
    this.lingering = null;
  }

  private kick(): void {
    if (this.writing || this.failure || !this.ready()) return;
    this.writing = (async () => {
      try {
        while (!this.failure && this.ready()) {
          const batch = this.pending.splice(0, this.limits.maxBatch);
          this.lingered = false;
          await this.write(batch);
        }
      } catch (error) {
        this.failure = { error };
      } finally {
        this.writing = null;
      }
    })();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}
