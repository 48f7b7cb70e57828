import { runProcess } from '../../lib/process-runner';
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

/** Output a Nix command may print before it is cut (closure listings of big evaluations are long). */
const MAX_NIX_STDOUT_BYTES = 256 * 1024 * 1024;

/**
 * Runs a Nix command (or any command) with an argument array under nixEnv(), collecting its output,
 * through the one process runner (its own process group, stopped by PID on timeout or abort).
 * Resolves with the exit code rather than throwing on failure; rejects only when the process cannot start or is aborted.
 */
export async function runNix(cmd: string, args: string[], opts: RunNixOptions = {}): Promise<RunNixResult> {
  if (opts.signal?.aborted) throw new NixCommandAborted(cmd, 'aborted before start');
  const r = await runProcess(cmd, args, {
    cwd: opts.cwd,
    env: nixEnv(opts.env),
    input: opts.input,
    signal: opts.signal,
    timeoutMs: opts.timeoutMs,
    maxStdoutBytes: MAX_NIX_STDOUT_BYTES,
    maxStderrBytes: 16 * 1024 * 1024,
  });
  if (r.aborted) throw new NixCommandAborted(cmd, 'aborted');
  return {
    stdout: r.stdout,
    stderr: r.timedOut ? `${r.stderr}\n${cmd} timed out after ${opts.timeoutMs} ms` : r.stderr,
    code: r.code,
  };
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
