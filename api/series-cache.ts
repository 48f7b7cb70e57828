interface Entry {
  /** The last computed value (absent until the first computation ends). */
  value?: unknown;
  computedAt: number;
  /** The computation under way, shared by every caller that needs it. */
  refreshing?: Promise<unknown>;
  lastUsed: number;
}

/**
 * Computed metric series, shared by concurrent callers and refreshed in the background: a dashboard polling the
 * same range, or fifty of them, costs one aggregate over builds per `freshMs`, not one per request.
 * - The first request for a key computes it; concurrent requests for that key wait for the same computation.
 * - Later requests are answered at once with the last value; when it is older than `freshMs`, one background
 *   computation replaces it (stale-while-revalidate). A series is thus at most `freshMs` plus one computation old.
 * - A failed computation is not remembered: the next request tries again.
 */
export class SeriesCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly freshMs: number,
    private readonly maxEntries = 200,
  ) {}

  get<T>(key: string, compute: () => Promise<T>): Promise<T> {
    const now = Date.now();
    let entry = this.entries.get(key);
    if (!entry) {
      this.evictIfFull();
      entry = { computedAt: 0, lastUsed: now };
      this.entries.set(key, entry);
    }
    entry.lastUsed = now;
    const hasValue = 'value' in entry;
    if (!entry.refreshing && (!hasValue || now - entry.computedAt > this.freshMs)) {
      const e = entry;
      e.refreshing = compute().then(
        (value) => {
          e.value = value;
          e.computedAt = Date.now();
          e.refreshing = undefined;
          return value;
        },
        (err: unknown) => {
          e.refreshing = undefined;
          if (!('value' in e)) this.entries.delete(key);
          throw err;
        },
      );
      // A background refresh's failure is seen by no caller: the stale value keeps being served meanwhile.
      if (hasValue) e.refreshing.catch(() => undefined);
    }
    return (hasValue ? Promise.resolve(entry.value) : entry.refreshing) as Promise<T>;
  }

  private evictIfFull(): void {
    if (this.entries.size < this.maxEntries) return;
    let oldest: [string, Entry] | undefined;
    for (const e of this.entries) if (!e[1].refreshing && (!oldest || e[1].lastUsed < oldest[1].lastUsed)) oldest = e;
    if (oldest) this.entries.delete(oldest[0]);
  }
}
