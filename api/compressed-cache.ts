import crypto from 'node:crypto';

/**
 * Compressed bodies keyed by the hash of what was compressed, least recently used out first, bounded
 * in bytes. A channel file is compressed once per content, not once per request (Hydra #230 is what
 * compressing per request costs); concurrent requests for the same content share one compression.
 * Compression is deterministic, so a cache miss (another process, a restart) gives the same bytes.
 */
export class CompressedCache {
  private readonly entries = new Map<string, Buffer>();
  private readonly inFlight = new Map<string, Promise<Buffer>>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  async get(content: Buffer | string, compress: (content: Buffer | string) => Promise<Buffer>): Promise<Buffer> {
    const key = crypto.createHash('sha256').update(content).digest('hex');
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const work = compress(content)
      .then((compressed) => {
        this.remember(key, compressed);
        return compressed;
      })
      .finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, work);
    return work;
  }

  private remember(key: string, value: Buffer): void {
    if (value.length > this.maxBytes) return;
    this.entries.set(key, value);
    this.bytes += value.length;
    for (const [oldest, old] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= old.length;
    }
  }
}
