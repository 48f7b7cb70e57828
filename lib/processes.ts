import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import fs from 'node:fs';
import { signalProcessGroup } from './process-runner';

/**
 * The fields of `/proc/<pid>/stat`, answered by their number in proc(5) (1: the PID, 3: the state, 4: the
 * parent's PID, 14–17: CPU ticks, 22: the start time), or undefined when there is no such process. The
 * command name (field 2) is in parentheses and may hold spaces and parentheses, so the fields after it
 * are counted from its last ')'.
 */
export function procStat(pid: number | string): ((field: number) => string) | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const afterName = text.slice(text.lastIndexOf(')') + 2).trim().split(' ');
  return (field) => (field === 1 ? String(pid) : field === 2 ? text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')) : afterName[field - 3]);
}

/** A free TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') return reject(new Error('no port'));
      const { port } = address;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on host:port, or rejects after timeoutMs. */
export async function waitForPort(host: string, port: number, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`process exited with code ${child.exitCode} before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port });
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => { socket.destroy(); resolve(false); });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${host}:${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Spawns a long-running child with an argument array, its output appended to logFile, in a process
 * group of its own: a Ctrl-C in the terminal reaches only Ringmaster, which stops the child by PID.
 */
export function spawnLogged(command: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv): ChildProcess {
  const out = fs.openSync(logFile, 'a');
  const child = spawn(command, args, { stdio: ['ignore', out, out], env: env ?? process.env, detached: true });
  fs.closeSync(out);
  return child;
}

/** Stops a child started by spawnLogged by its PID (its process group): SIGTERM, then SIGKILL after graceMs. */
export async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  signalProcessGroup(child, 'SIGTERM');
  const timer = setTimeout(() => signalProcessGroup(child, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
