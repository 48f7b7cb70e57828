import { BuildLogSink } from './build-log';
import { noSubstitutersArgs, nixOptionArgs, runNixStore, signalProcessGroup, spawnNixStore, storePathLines, waitForExit } from './nix-process';
import { readDerivation } from './derivation';
import { statusFromNixExit } from './realise-status';
import type { RealiseOptions, RealiseResult, RealiseStatus } from './types';

/** Seconds after SIGTERM before the process group gets SIGKILL. */
const KILL_GRACE_MS = 5_000;
/** Our own watchdog fires this long after Nix's `--timeout` should have. */
const WATCHDOG_SLACK_MS = 30_000;

/** The `--realise` arguments shared by local and remote realisation. */
export function realiseArgs(drvPath: string, opts: RealiseOptions): string[] {
  return [
    '--realise', drvPath, '--no-gc-warning',
    ...noSubstitutersArgs,
    ...nixOptionArgs(opts.nixOptions),
    '--timeout', String(Math.max(0, Math.floor(opts.timeoutSeconds))),
    '--max-silent-time', String(Math.max(0, Math.floor(opts.maxSilentSeconds))),
  ];
}

/** Output name → store path of a derivation in the local store. */
export async function derivationOutputs(drvPath: string): Promise<Record<string, string>> {
  try {
    return (await readDerivation(drvPath)).outputs;
  } catch {
    const paths = storePathLines(await runNixStore(['--query', '--outputs', drvPath]));
    return Object.fromEntries(paths.map((p, i) => [i === 0 ? 'out' : `out${i}`, p]));
  }
}

/**
 * Builds a derivation in the local store with `nix-store --realise`, streaming its log.
 * Never throws for a build problem: the outcome is in `status`.
 */
export async function realiseLocally(drvPath: string, opts: RealiseOptions): Promise<RealiseResult> {
  if (opts.signal?.aborted) return { status: 'cancelled', exitCode: null, errorMessage: 'cancelled before start', outputs: {}, logBytes: 0 };
  opts.onPhase?.('building');

  const child = spawnNixStore(realiseArgs(drvPath, opts));
  let stoppedAs: RealiseStatus | null = null;
  let killTimer: NodeJS.Timeout | undefined;
  const stop = (status: RealiseStatus) => {
    if (stoppedAs) return;
    stoppedAs = status;
    signalProcessGroup(child, 'SIGTERM');
    killTimer = setTimeout(() => signalProcessGroup(child, 'SIGKILL'), KILL_GRACE_MS);
  };

  const log = new BuildLogSink(opts.onLog, opts.logLimitBytes, () => stop('log_limit_exceeded'));
  child.stderr!.on('data', (b: Buffer) => log.write(b));
  child.stdout!.resume();
  const onAbort = () => stop('cancelled');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const watchdog = opts.timeoutSeconds > 0 ? setTimeout(() => stop('timeout'), opts.timeoutSeconds * 1000 + WATCHDOG_SLACK_MS) : undefined;

  let exit: { code: number | null; signal: NodeJS.Signals | null };
  try {
    exit = await waitForExit(child);
  } catch (err) {
    return { status: 'failed', exitCode: null, errorMessage: `cannot run nix-store: ${(err as Error).message}`, outputs: {}, logBytes: log.bytes };
  } finally {
    clearTimeout(watchdog);
    clearTimeout(killTimer);
    opts.signal?.removeEventListener('abort', onAbort);
    // Whatever the build left in its group (nix-store normally cleans up its builders on SIGTERM).
    if (stoppedAs) signalProcessGroup(child, 'SIGKILL');
  }
  log.end();

  if (stoppedAs) {
    const messages: Record<string, string> = {
      cancelled: 'build cancelled',
      log_limit_exceeded: `build log exceeded the limit of ${opts.logLimitBytes} bytes`,
      timeout: `build did not finish within ${opts.timeoutSeconds} seconds`,
    };
    return { status: stoppedAs, exitCode: exit.code, errorMessage: messages[stoppedAs] ?? null, outputs: {}, logBytes: log.bytes };
  }
  const { status, errorMessage } = statusFromNixExit(exit.code, log.tail, 'failed');
  if (status !== 'succeeded') return { status, exitCode: exit.code, errorMessage, outputs: {}, logBytes: log.bytes };
  return { status, exitCode: exit.code, errorMessage: null, outputs: await derivationOutputs(drvPath), logBytes: log.bytes };
}
