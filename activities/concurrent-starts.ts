/**
 * A queue between a producer that must not wait (the evaluator's output reader) and work that goes
 * out at most `limit` at a time (workflow starts). `push` never blocks; `pause` holds back new starts
 * until `resume`; `drain` resumes, waits for everything pushed so far and throws the first failure.
 */
export class ConcurrentStarts<T> {
  private readonly queue: T[] = [];
  private head = 0;
  private running = 0;
  private failure: unknown = undefined;
  private idle: Array<() => void> = [];
  private paused = false;
  started = 0;

  constructor(
    private readonly limit: number,
    private readonly start: (item: T) => Promise<void>,
  ) {
    if (limit < 1) throw new Error('limit must be at least 1');
  }

  push(...items: T[]): void {
    this.queue.push(...items);
    this.pump();
  }

  /** Starts nothing more until `resume` (what is in flight goes on; `push` still queues). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.pump();
  }

  /** Items pushed and not started yet. */
  get waiting(): number {
    return this.queue.length - this.head;
  }

  /** Drops what has not started yet (the producer failed or was cancelled). */
  abandon(): void {
    this.queue.length = 0;
    this.head = 0;
  }

  async drain(): Promise<void> {
    this.resume();
    while (this.waiting > 0 || this.running > 0) {
      await new Promise<void>((resolve) => this.idle.push(resolve));
    }
    if (this.failure !== undefined) throw this.failure;
  }

  private pump(): void {
    while (!this.paused && this.running < this.limit && this.head < this.queue.length && this.failure === undefined) {
      const item = this.queue[this.head++];
      this.running++;
      this.start(item).then(
        () => {
          this.started++;
        },
        (err) => {
          if (this.failure === undefined) this.failure = err;
        },
      ).finally(() => {
        this.running--;
        if (this.head > 1024 && this.head * 2 > this.queue.length) {
          this.queue.splice(0, this.head);
          this.head = 0;
        }
        if (this.failure !== undefined) {
          // Nothing more starts after a failure: what waits is dropped and drain reports the failure.
          this.queue.length = 0;
          this.head = 0;
        }
        this.pump();
        if (this.running === 0 && this.waiting === 0) for (const wake of this.idle.splice(0)) wake();
      });
    }
  }
}
