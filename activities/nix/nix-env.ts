import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';

/** The settings every Nix process Ringmaster starts runs with: no binary cache to wait on, a sandbox that works on Debian. */
export const RINGMASTER_NIX_CONFIG = 'substituters =\nsandbox-paths = /bin /lib /lib64 /usr';

/**
 * The environment for a Nix process: process.env plus `extra`, with Ringmaster's NIX_CONFIG lines appended to any
 * NIX_CONFIG already set (later lines win in NIX_CONFIG, so ours take effect).
 */
export function nixEnv(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  const existing = env.NIX_CONFIG;
  env.NIX_CONFIG = existing && existing.trim() !== '' ? `${existing}\n${RINGMASTER_NIX_CONFIG}` : RINGMASTER_NIX_CONFIG;
  return env;
}

export interface RunNixOptions {
  cwd?: string;
  /** Written to the child's stdin, which is then closed. */
  input?: string | Buffer;
  signal?: AbortSignal;
  /** Kills the child (SIGTERM, then SIGKILL) after this many milliseconds. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface RunNixResult {
  stdout: string;
  stderr: string;
  /** The exit code; a child killed by a signal (abort, timeout) reports a non-zero code. */
  code: number;
}

export class NixCommandAborted extends Error {
  constructor(command: string, reason: string) {
    super(`${command} was stopped: ${reason}`);
    this.name = 'NixCommandAborted';
  }
}

/**
 * Runs a Nix command (or any command) with an argument array under nixEnv(), collecting its output.
 * Resolves with the exit code rather than throwing on failure; rejects only when the process cannot start or is aborted.
 */
export function runNix(cmd: string, args: string[], opts: RunNixOptions = {}): Promise<RunNixResult> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(new NixCommandAborted(cmd, 'aborted before start'));
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: nixEnv(opts.env),
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let stoppedBecause: string | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const stop = (reason: string) => {
      if (stoppedBecause !== undefined || child.pid === undefined || child.exitCode !== null) return;
      stoppedBecause = reason;
      try { process.kill(child.pid, 'SIGTERM'); } catch { /* already gone */ }
      killTimer = setTimeout(() => { try { if (child.pid) process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
    };
    const onAbort = () => stop('aborted');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const timeout = opts.timeoutMs !== undefined ? setTimeout(() => stop(`timed out after ${opts.timeoutMs} ms`), opts.timeoutMs) : undefined;

    child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on('error', () => { /* the child may exit without reading its input */ });
      child.stdin.end(opts.input);
    }
    child.once('error', (err) => {
      cleanup();
      reject(err);
    });
    child.once('close', (code, signal) => {
      cleanup();
      if (stoppedBecause === 'aborted') return reject(new NixCommandAborted(cmd, 'aborted'));
      const err = Buffer.concat(stderr).toString('utf8');
      resolve({
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: stoppedBecause ? `${err}\n${cmd} ${stoppedBecause}` : err,
        code: code ?? (signal ? 128 + (signalNumber(signal) ?? 1) : 1),
      });
    });
    function cleanup() {
      if (timeout) clearTimeout(timeout);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  });
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
  return numbers[signal];
}

/** Whether an executable of this name is on PATH. */
export async function commandOnPath(name: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    try {
      await access(path.join(dir, name), constants.X_OK);
      return true;
    } catch { /* not here */ }
  }
  return false;
}
