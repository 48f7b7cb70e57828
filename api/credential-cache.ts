import { SingleFlight, writeEpochOf, type WriteEpoch } from './single-flight';

interface Entry<T> {
  value: T;
  /** The write epoch at which its lookup started. */
  epoch: number;
  /** The time (the cache's clock) after which it is looked up again. */
  until: number;
}

/**
 * Whom a credential stands for (an API key's or a session's row, by the credential's SHA-256), remembered for a
 * short while so that a busy client does not cost a database read per request.
 *
 * - **Never past a write of this process.** An entry holds only while the app's write epoch (single-flight.ts) is the
 *   one at which its lookup started: every request that may write (anything but GET, HEAD and OPTIONS) bumps the epoch
 *   before its response is sent, so a revoked or deleted key, a role change, a disabled user or a signed-out session
 *   is seen by the next request through the same process, as without the cache.
 * - **At most `ttlMs` behind the database otherwise.** A change made by another process (another API process, the
 *   CLI, SQL) is seen once the entry is `ttlMs` old: that is the revocation delay across API processes.
 * - Only credentials that were found are remembered: a key created by another process is accepted at once, and an
 *   unknown credential is looked up every time, as before.
 * - `stillValid` refuses an entry whose own facts have moved on (a session that expired, a key whose use is due to
 *   be recorded again), which then is looked up again.
 * - Concurrent lookups of one credential at one epoch share one read (a single flight), cached or not.
 * - `ttlMs` 0 remembers nothing.
 */
export class CredentialCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly lookups: SingleFlight<T | undefined>;

  constructor(
    private readonly epoch: WriteEpoch,
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
    /** The clock (milliseconds): Date.now, or a test's. */
    private readonly clock: () => number = Date.now,
  ) {
    this.lookups = new SingleFlight(epoch);
  }

  async get(hash: string, lookup: () => Promise<T | undefined>, stillValid: (value: T, now: number) => boolean): Promise<T | undefined> {
    const now = this.clock();
    const entry = this.entries.get(hash);
    if (entry && entry.epoch === this.epoch.current && now < entry.until && stillValid(entry.value, now)) return entry.value;
    const epoch = this.epoch.current;
    const value = await this.lookups.run(hash, lookup);
    this.entries.delete(hash);
    if (value !== undefined && this.ttlMs > 0) {
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
      this.entries.set(hash, { value, epoch, until: now + this.ttlMs });
    }
    return value;
  }

  /** Credentials remembered now (for tests). */
  get size(): number {
    return this.entries.size;
  }
}

const caches = new WeakMap<object, Map<string, CredentialCache<unknown>>>();

/**
 * The cache of one kind of credential (`api-keys`, `sessions`) for one database handle (`deps.db`), checked against
 * that handle's write epoch; made on first use with `ttlMs`.
 */
export function credentialCacheOf<T>(db: object, kind: string, ttlMs: number): CredentialCache<T> {
  let byKind = caches.get(db);
  if (!byKind) caches.set(db, (byKind = new Map()));
  let cache = byKind.get(kind);
  if (!cache) byKind.set(kind, (cache = new CredentialCache<unknown>(writeEpochOf(db), ttlMs)));
  return cache as CredentialCache<T>;
}
