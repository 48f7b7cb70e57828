import { runNixStore, signalProcessGroup, spawnNixStore, storePathLines, waitForExit } from './nix-process';
import { RealiseSupervision, realiseArgs } from './supervision';
import { stopNixProcess } from './stop-nix';
import { readDerivation } from '../nix/drv';
import { statusFromNixExit } from './realise-status';
import type { RealiseOptions, RealiseResult } from './types';

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
  let endStop: (() => void) | undefined;
  const supervision = new RealiseSupervision(opts, () => {
    endStop = stopNixProcess(child);
  });
  const log = supervision.log;
  child.stderr!.on('data', (b: Buffer) => log.write(b));
  child.stdout!.resume();

  let exit: { code: number | null; signal: NodeJS.Signals | null };
  try {
    exit = await waitForExit(child);
  } catch (err) {
    return { status: 'failed', exitCode: null, errorMessage: `cannot run nix-store: ${(err as Error).message}`, outputs: {}, logBytes: log.bytes };
  } finally {
    supervision.close();
    endStop?.();
    // Whatever the build left in its group (nix-store normally cleans up its builders on SIGTERM).
    if (supervision.stoppedAs) signalProcessGroup(child, 'SIGKILL');
  }
  log.end();

  if (supervision.stoppedAs) {
    return { status: supervision.stoppedAs, exitCode: exit.code, errorMessage: supervision.stoppedMessage(), outputs: {}, logBytes: log.bytes };
  }
  const { status, errorMessage } = statusFromNixExit(exit.code, log.tail, 'failed');
  if (status !== 'succeeded') return { status, exitCode: exit.code, errorMessage, outputs: {}, logBytes: log.bytes };
  return { status, exitCode: exit.code, errorMessage: null, outputs: await derivationOutputs(drvPath), logBytes: log.bytes };
}
