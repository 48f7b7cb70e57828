import type { Readable } from 'node:stream';

/**
 * Nix's wire format, shared by NAR files and the store protocols (`nix-store --serve`, the daemon):
 * an integer is 8 bytes little-endian; a string is its length as such an integer, its bytes, then zeros
 * up to a multiple of 8; a list of strings is its count, then each string.
 */

export function wireInt(value: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(BigInt(value));
  return bytes;
}

/** A string framed the wire way: length, bytes, padding. */
export function wireString(value: string | Buffer): Buffer[] {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value;
  const padding = (8 - (bytes.length % 8)) % 8;
  return padding > 0 ? [wireInt(bytes.length), bytes, Buffer.alloc(padding)] : [wireInt(bytes.length), bytes];
}

export function wireStrings(values: readonly string[]): Buffer[] {
  return [wireInt(values.length), ...values.flatMap((v) => wireString(v))];
}

/** Reads wire values from a stream as they arrive; fails every pending and later read once the stream ends. */
export class WireReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private wake: (() => void) | undefined;
  private ended: Error | undefined;

  constructor(stream: Readable) {
    stream.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      this.notify();
    });
    stream.on('end', () => this.end(new Error('the stream ended')));
    stream.on('error', (err) => this.end(err));
  }

  /** Ends the reader: reads wait no more and fail with `reason`. */
  end(reason: Error): void {
    this.ended ??= reason;
    this.notify();
  }

  async int(): Promise<number> {
    const value = (await this.take(8)).readBigUInt64LE();
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`wire integer ${value} is too large`);
    return Number(value);
  }

  async string(): Promise<string> {
    const length = await this.int();
    const padded = length + ((8 - (length % 8)) % 8);
    return (await this.take(padded)).subarray(0, length).toString();
  }

  async strings(): Promise<string[]> {
    const count = await this.int();
    const values: string[] = [];
    for (let i = 0; i < count; i++) values.push(await this.string());
    return values;
  }

  /** Reads exactly `n` raw bytes (no framing), handing them to `sink` as they arrive, without joining them. */
  async forward(n: number, sink: (chunk: Buffer) => void | Promise<void>): Promise<void> {
    let left = n;
    while (left > 0) {
      while (this.buffered === 0) {
        if (this.ended) throw this.ended;
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
      const first = this.chunks[0];
      const piece = first.length <= left ? first : first.subarray(0, left);
      if (piece === first) this.chunks.shift();
      else this.chunks[0] = first.subarray(left);
      this.buffered -= piece.length;
      left -= piece.length;
      await sink(piece);
    }
  }

  private async take(n: number): Promise<Buffer> {
    if (n === 0) return Buffer.alloc(0);
    while (this.buffered < n) {
      if (this.ended) throw this.ended;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    // Joins only the chunks that the value spans: a long reply arrives in many chunks.
    let joined = this.chunks[0];
    let used = 1;
    while (joined.length < n) joined = Buffer.concat([joined, this.chunks[used++]]);
    const taken = joined.subarray(0, n);
    const rest = joined.subarray(n);
    this.chunks = rest.length > 0 ? [rest, ...this.chunks.slice(used)] : this.chunks.slice(used);
    this.buffered -= n;
    return taken;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
