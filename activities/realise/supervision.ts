import { BuildLogSink } from './build-log';
import { noSubstitutersArgs, nixOptionArgs } from './nix-process';
import type { RealiseOptions, RealiseStatus } from './types';

export { KILL_GRACE_MS } from './stop-nix';
/** Our own watchdog fires this long after Nix's `--timeout` should have. */
export const WATCHDOG_SLACK_MS = 30_000;

/** The `--realise` arguments shared by local and remote realisation, of one derivation or of a batch. */
export function realiseArgs(drvPaths: string | string[], opts: Pick<RealiseOptions, 'nixOptions' | 'timeoutSeconds' | 'maxSilentSeconds'>): string[] {
  return [
    '--realise', ...(typeof drvPaths === 'string' ? [drvPaths] : drvPaths), '--no-gc-warning',
    ...noSubstitutersArgs,
    // A derivation another nix-store is building (another batch realising the same closure) is waited
    // for by polling its lock: every second instead of Nix's default five.
    '--option', 'build-poll-interval', '1',
    // Ringmaster keeps each step's log itself (streamed from Nix's stderr): Nix's own copy under
    // /nix/var/log/nix, bzip2-compressed by its serial main loop for every derivation, is never read.
    '--option', 'keep-build-log', 'false',
    ...nixOptionArgs(opts.nixOptions),
    '--timeout', String(Math.max(0, Math.floor(opts.timeoutSeconds))),
    '--max-silent-time', String(Math.max(0, Math.floor(opts.maxSilentSeconds))),
  ];
}

/**
 * What watches one realising process, wherever it runs: the log (and its limit), a cancellation, our
 * own timeout watchdog. The first of them to fire decides the status (`stoppedAs`) and calls `kill`
 * once; the local path kills its process group, the remote one the group on the builder.
 */
export class RealiseSupervision {
  stoppedAs: RealiseStatus | null = null;
  readonly log: BuildLogSink;
  private readonly watchdog: NodeJS.Timeout | undefined;
  private readonly onAbort = () => this.stop('cancelled');

  constructor(
    private readonly opts: RealiseOptions,
    private readonly kill: () => void,
  ) {
    this.log = new BuildLogSink(opts.onLog, opts.logLimitBytes, () => this.stop('log_limit_exceeded'));
    opts.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.watchdog = opts.timeoutSeconds > 0 ? setTimeout(() => this.stop('timeout'), opts.timeoutSeconds * 1000 + WATCHDOG_SLACK_MS) : undefined;
  }

  stop(status: RealiseStatus): void {
    if (this.stoppedAs) return;
    this.stoppedAs = status;
    this.kill();
  }

  /** The process ended: nothing fires any more. */
  close(): void {
    clearTimeout(this.watchdog);
    this.opts.signal?.removeEventListener('abort', this.onAbort);
  }

  /** Why the process was stopped, in words, when it was. */
  stoppedMessage(): string | null {
    switch (this.stoppedAs) {
      case 'cancelled':
        return 'build cancelled';
      case 'log_limit_exceeded':
        return `build log exceeded the limit of ${this.opts.logLimitBytes} bytes`;
      case 'timeout':
        return `build did not finish within ${this.opts.timeoutSeconds} seconds`;
      default:
        return null;
    }
  }
}
