import readline from 'node:readline';
import { signalProcessGroup, spawnNixStore, waitForExit } from './nix-process';
import { KILL_GRACE_MS, realiseArgs } from './supervision';
import { NixJsonLogParser, type NixBuildEvent } from './nix-json-log';

export interface LocalBatchOptions {
  /** `--max-jobs`: the builder slots the batch holds. */
  slots: number;
  timeoutSeconds: number;
  maxSilentSeconds: number;
  /** Each derivation's start, log line, end and failure, in the order Nix reports them. */
  onEvent: (event: NixBuildEvent) => void;
}

export interface LocalBatchRun {
  /** Kills the process group (a cancel, a log limit): the run then ends with the process. */
  stop(): void;
  /** The exit of the process; `spawnError` when it could not run at all. */
  finished: Promise<{ exitCode: number | null; spawnError: string | null }>;
}

/**
 * One `nix-store --realise d1 … dK --max-jobs <slots> --keep-going --log-format internal-json` in the
 * local store: Nix orders the derivations by their dependencies itself (a member whose inputs are in
 * the batch waits for them, and builds missing inputs that are not), and reports each one's progress.
 */
export function realiseBatchLocally(drvPaths: string[], opts: LocalBatchOptions): LocalBatchRun {
  const args = [...realiseArgs(drvPaths, opts), '--max-jobs', String(Math.max(1, opts.slots)), '--keep-going', '--log-format', 'internal-json'];
  const child = spawnNixStore(args);
  const parser = new NixJsonLogParser();
  const lines = readline.createInterface({ input: child.stderr!, crlfDelay: Infinity });
  const linesRead = new Promise<void>((resolve) => lines.once('close', resolve));
  lines.on('line', (line) => {
    for (const event of parser.parseLine(line)) opts.onEvent(event);
  });
  child.stdout!.resume();
  let killTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    signalProcessGroup(child, 'SIGTERM');
    killTimer = setTimeout(() => signalProcessGroup(child, 'SIGKILL'), KILL_GRACE_MS);
  };
  const finished = (async () => {
    try {
      const exit = await waitForExit(child);
      // Every line read before the process's end is parsed before the caller hears of it.
      await linesRead;
      return { exitCode: exit.code, spawnError: null };
    } catch (err) {
      return { exitCode: null, spawnError: `cannot run nix-store: ${(err as Error).message}` };
    } finally {
      clearTimeout(killTimer);
      // Whatever the builds left in the group once stopped (nix-store normally cleans up on SIGTERM).
      if (stopped) signalProcessGroup(child, 'SIGKILL');
    }
  })();
  return { stop, finished };
}
