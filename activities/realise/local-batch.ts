import { signalProcessGroup, spawnNixStore, waitForExit } from './nix-process';
import { stopNixProcess } from './stop-nix';
import { batchRealiseArgs, nixJsonLogFeed, type BatchBuilder, type BatchRun, type BatchRunOptions } from './batch-run';
import { locallyInvalidPaths } from './closure';

/**
 * One `nix-store --realise d1 … dK --max-jobs <slots> --keep-going --log-format internal-json` in the
 * local store: Nix orders the derivations by their dependencies itself (a member whose inputs are in
 * the batch waits for them, and builds missing inputs that are not), and reports each one's progress.
 */
export function realiseBatchLocally(drvPaths: string[], opts: BatchRunOptions): BatchRun {
  const child = spawnNixStore(batchRealiseArgs(drvPaths, opts));
  const feed = nixJsonLogFeed(opts.onEvent);
  const linesRead = new Promise<void>((resolve) => child.stderr!.once('close', resolve));
  child.stderr!.on('data', (chunk: Buffer) => feed.write(chunk));
  child.stdout!.resume();
  let endStop: (() => void) | undefined;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    endStop = stopNixProcess(child);
  };
  const finished = (async () => {
    try {
      const exit = await waitForExit(child);
      // Every line read before the process's end is parsed before the caller hears of it.
      await linesRead;
      feed.end();
      return { exitCode: exit.code, spawnError: null };
    } catch (err) {
      return { exitCode: null, spawnError: `cannot run nix-store: ${(err as Error).message}` };
    } finally {
      endStop?.();
      // Whatever the builds left in the group once stopped (nix-store normally cleans up on SIGTERM).
      if (stopped) signalProcessGroup(child, 'SIGKILL');
    }
  })();
  return { stop, finished };
}

/** The worker's own Nix as a batch's builder (Hydra's localhost fallback): nothing to copy either way. */
export const localBatchBuilder: BatchBuilder = {
  recordedBuilderId: null,
  where: "on the worker's own Nix (no remote builders configured)",
  prepare: async () => undefined,
  realise: realiseBatchLocally,
  invalidPaths: locallyInvalidPaths,
  fetch: async () => undefined,
};
