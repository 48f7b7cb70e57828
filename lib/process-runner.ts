import { spawn, type ChildProcess } from 'node:child_process';

/**
 * One way to run a program to completion: an argument array (never a shell string), its own process
 * group (so that a timeout or an abort stops whatever it started too, by PID), a timeout, and caps on
 * the output it may hold in memory.
 */

export interface RunProcessOptions {
  cwd?: string;
  /** The whole environment of the child (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed; without it stdin is /dev/null. */
  input?: string | Buffer;
  /** Stopped (SIGTERM to its group, SIGKILL after killGraceMs) when it runs longer. */
  timeoutMs?: number;
  /** Stopped the same way when this signal aborts. */
  signal?: AbortSignal;
  /** Bytes of stdout kept (default 16 MiB); the rest is dropped and `truncated` says so. */
  maxStdoutBytes?: number;
  /** Bytes of stderr kept (default 1 MiB). */
  maxStderrBytes?: number;
  /** Time between SIGTERM and SIGKILL (default 5 s). */
  killGraceMs?: number;
  /** Run as this user and group (root only). */
  uid?: number;
  gid?: number;
}

export interface ProcessResult {
  /** The exit code; a child ended by a signal has 128 + the signal's number. */
  code: number;
  /** The signal that ended the child, if one did. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  aborted: boolean;
  /** Whether output beyond the caps was dropped. */
  truncated: boolean;
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };

/** Sends a signal to a child's process group (it was spawned detached), or to the child alone if it has none. */
export function signalProcessGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try { child.kill(signal); } catch { /* already gone */ }
  }
}

/**
 * Runs command with args to completion and resolves with its exit code and output; a non-zero exit is
 * a result, not an error. Rejects only when the program cannot be started (e.g. ENOENT).
 */
export function runProcess(command: string, args: readonly string[], opts: RunProcessOptions = {}): Promise<ProcessResult> {
  const maxStdout = opts.maxStdoutBytes ?? 16 * 1024 * 1024;
  const maxStderr = opts.maxStderrBytes ?? 1024 * 1024;
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(command, [...args], {
        cwd: opts.cwd,
        env: opts.env ?? process.env,
        stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        detached: true,
        ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
        ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
      });
    } catch (err) {
      reject(err);
      return;
    }
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let stdoutBytes = 0;
    let stderrBytes = 0;
    let truncated = false;
    let timedOut = false;
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;
    const collect = (into: Buffer[], chunk: Buffer, used: number, cap: number): number => {
      const room = cap - used;
      if (room <= 0) { truncated = true; return used; }
      if (chunk.length > room) { truncated = true; into.push(chunk.subarray(0, room)); return cap; }
      into.push(chunk);
      return used + chunk.length;
    };
    child.stdout!.on('data', (chunk: Buffer) => { stdoutBytes = collect(stdout, chunk, stdoutBytes, maxStdout); });
    child.stderr!.on('data', (chunk: Buffer) => { stderrBytes = collect(stderr, chunk, stderrBytes, maxStderr); });
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on('error', () => { /* the child may exit without reading its input */ });
      child.stdin.end(opts.input);
    }
    const stop = () => {
      if (killTimer || child.exitCode !== null || child.signalCode !== null) return;
      signalProcessGroup(child, 'SIGTERM');
      killTimer = setTimeout(() => signalProcessGroup(child, 'SIGKILL'), opts.killGraceMs ?? 5_000);
    };
    const onAbort = () => { aborted = true; stop(); };
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    const timeout = opts.timeoutMs !== undefined ? setTimeout(() => { timedOut = true; stop(); }, opts.timeoutMs) : undefined;
    const cleanup = () => {
      if (timeout) clearTimeout(timeout);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    child.once('error', (err) => { cleanup(); reject(err); });
    child.once('close', (code, signal) => {
      cleanup();
      resolve({
        code: code ?? (signal ? 128 + (SIGNAL_NUMBERS[signal] ?? 1) : 1),
        signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        timedOut,
        aborted,
        truncated,
      });
    });
  });
}
