import { spawn, type ChildProcess } from 'node:child_process';
import { runProcess, signalProcessGroup } from '../../lib/process-runner';

export { signalProcessGroup };

/** Options every nix command here gets: never wait on a binary cache. */
export const noSubstitutersArgs: readonly string[] = ['--option', 'substituters', ''];

export function nixOptionArgs(options: Record<string, string> | undefined): string[] {
  const args: string[] = [];
  for (const [name, value] of Object.entries(options ?? {})) args.push('--option', name, value);
  return args;
}

export class NixCommandError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`nix-store ${args.slice(0, 3).join(' ')}… exited with ${exitCode}: ${lastErrorLines(stderr) ?? stderr.trim().slice(-500)}`);
    this.name = 'NixCommandError';
  }
}

/** Spawns `nix-store` with an argument array, in its own process group so that the whole group can be signalled. */
export function spawnNixStore(args: string[], stdio: Array<'pipe' | 'ignore'> = ['ignore', 'pipe', 'pipe']): ChildProcess {
  return spawn('nix-store', args, { stdio, detached: true });
}

export function waitForExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
}

/** Runs `nix-store args…` to completion and returns its stdout; throws NixCommandError when it exits non-zero. */
export async function runNixStore(args: string[]): Promise<string> {
  const r = await runProcess('nix-store', args, { maxStdoutBytes: 256 * 1024 * 1024, maxStderrBytes: 16 * 1024 * 1024 });
  if (r.code !== 0) throw new NixCommandError(args, r.code, r.stderr);
  return r.stdout;
}

export function storePathLines(text: string): string[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('/'));
}

/** Splits store paths into groups whose joined length stays under `maxChars` (command lines, SSH exec packets). */
export function chunkPaths(paths: string[], maxChars = 64_000): string[][] {
  const chunks: string[][] = [];
  let current: string[] = [];
  let length = 0;
  for (const p of paths) {
    if (current.length > 0 && length + p.length + 3 > maxChars) {
      chunks.push(current);
      current = [];
      length = 0;
    }
    current.push(p);
    length += p.length + 3;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** The `error: …` lines (with their continuation lines) at the end of a Nix log, or null. */
export function lastErrorLines(log: string): string | null {
  const lines = log.replace(/\x1b\[[0-9;]*m/g, '').split('\n');
  const errors: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].startsWith('error:')) {
      let message = lines[i].slice('error:'.length).trim();
      while (i + 1 < lines.length && /^\s+\S/.test(lines[i + 1]) && !lines[i + 1].startsWith('error:')) {
        message += '\n' + lines[++i].trim();
      }
      errors.push(message);
    }
  }
  return errors.length ? errors.join('\n') : null;
}
