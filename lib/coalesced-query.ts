/**
 * Coalesces concurrent set queries into one at a time: callers that ask while a query runs wait for it,
 * then share the next one, asked with the union of their keys. Each caller gets the answer for its own
 * keys only, from a query that started after it asked (never an answer older than its question).
 * When a shared query fails, each of its callers is asked again on its own, so one caller's bad key fails
 * that caller only. Made for questions that cost one process however many keys they carry (`nix-store --check-validity`):
 * many concurrent plans spawn a few processes instead of one each.
 */
export class CoalescedQuery<K> {
  private waiting: Array<{ keys: K[]; resolve: (answer: Set<K>) => void; reject: (err: unknown) => void }> = [];
  private running = false;

  /** `query` answers the subset of the keys it is given that have the property asked about. */
  constructor(private readonly query: (keys: K[]) => Promise<Set<K>>) {}

  /** The subset of `keys` that the query answers, from a query run after this call. */
  ask(keys: K[]): Promise<Set<K>> {
    if (keys.length === 0) return Promise.resolve(new Set());
    return new Promise<Set<K>>((resolve, reject) => {
      this.waiting.push({ keys, resolve, reject });
      if (!this.running) this.runNext();
    });
  }

  private runNext(): void {
    const callers = this.waiting;
    this.waiting = [];
    if (callers.length === 0) {
      this.running = false;
      return;
    }
    this.running = true;
    const union = [...new Set(callers.flatMap((c) => c.keys))];
    this.query(union).then(
      (answer) => {
        for (const c of callers) c.resolve(new Set(c.keys.filter((k) => answer.has(k))));
      },
      async (err) => {
        if (callers.length === 1) return callers[0].reject(err);
        // One caller's bad key must not fail the others: each asks on its own.
        for (const c of callers) await this.query(c.keys).then((answer) => c.resolve(new Set(c.keys.filter((k) => answer.has(k)))), c.reject);
      },
    ).finally(() => this.runNext());
  }
}
