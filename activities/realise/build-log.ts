import { StringDecoder } from 'node:string_decoder';

/**
 * Passes a build's log to `onLog`, counting bytes and stopping at `limitBytes` (0 = no limit).
 * Keeps the last few KiB for error messages.
 */
export class BuildLogSink {
  private readonly decoder = new StringDecoder('utf8');
  private tailText = '';
  bytes = 0;
  exceeded = false;

  constructor(
    private readonly onLog: (chunk: string) => void,
    private readonly limitBytes: number,
    private readonly onExceeded: () => void,
    private readonly tailChars = 16_384,
  ) {}

  write(chunk: Buffer): void {
    if (this.exceeded) return;
    let data = chunk;
    if (this.limitBytes > 0 && this.bytes + data.length > this.limitBytes) {
      data = data.subarray(0, this.limitBytes - this.bytes);
      this.exceeded = true;
    }
    this.bytes += data.length;
    const text = this.decoder.write(data);
    if (text) this.emit(text);
    if (this.exceeded) {
      const rest = this.decoder.end();
      if (rest) this.emit(rest);
      this.onExceeded();
    }
  }

  end(): void {
    if (this.exceeded) return;
    const rest = this.decoder.end();
    if (rest) this.emit(rest);
  }

  /** The last few KiB of log seen. */
  get tail(): string {
    return this.tailText;
  }

  private emit(text: string): void {
    this.tailText = (this.tailText + text).slice(-this.tailChars);
    this.onLog(text);
  }
}
