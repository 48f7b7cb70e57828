/**
 * A short-lived cache of computed metric series, shared by concurrent requests: a dashboard polling the same
 * range, or fifty of them, costs one aggregate over builds per `ttlMs`, not one per request. A request that
 * arrives while the series is being computed waits for that computation instead of starting its own.
 */
export class SeriesCache {
  private readonly entries = new Map<string, { expires: number; value: Promise<unknown> }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 500,
  ) {}

  get<T>(key: string, compute: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && hit.expires > now) return hit.value as Promise<T>;
    if (this.entries.size >= this.maxEntries) {
      for (const [k, e] of this.entries) if (e.expires <= now) this.entries.delete(k);
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    }
    const value = compute();
    this.entries.set(key, { expires: now + this.ttlMs, value });
    // A failure is not remembered: the next request tries again.
    value.catch(() => {
      if (this.entries.get(key)?.value === value) this.entries.delete(key);
    });
    return value;
  }
}
