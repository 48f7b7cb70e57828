import { etagOf } from './cached-response';

/** A generated channel file and its ETag. */
export interface ChannelFile {
  body: Buffer;
  etag: string;
}

/**
 * Generated channel files by key (the evaluation and the version of its results), least recently used
 * out first, bounded in bytes. A file is generated and compressed once per version, not once per
 * request (Hydra #230 is what compressing per request costs); concurrent requests for one key share one
 * generation. Generation is deterministic, so a miss (another process, a restart) gives the same bytes.
 */
export class ChannelFileCache {
  private readonly entries = new Map<string, ChannelFile>();
  private readonly inFlight = new Map<string, Promise<ChannelFile>>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  async get(key: string, generate: () => Promise<Buffer>): Promise<ChannelFile> {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const work = generate()
      .then((body) => {
        const file = { body, etag: etagOf(body) };
        this.remember(key, file);
        return file;
      })
      .finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, work);
    return work;
  }

  private remember(key: string, file: ChannelFile): void {
    if (file.body.length > this.maxBytes) return;
    this.entries.set(key, file);
    this.bytes += file.body.length;
    for (const [oldest, old] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= old.body.length;
    }
  }
}
