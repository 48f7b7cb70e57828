import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { BuilderSpec } from '../../activities/realise/types';
import { freePort, procStat } from '../../lib/processes';

const execFileAsync = promisify(execFile);

/*
 * What a chroot store ("--store /some/root", i.e. local?root=/some/root) needs to build with Nix 2.8 as root,
 * found on this machine (Debian 12, no daemon, /etc/nix/nix.conf says sandbox = false):
 * - Building into a store whose real location differs from /nix/store always uses the chroot sandbox,
 *   whatever `sandbox` says (`sandbox = false` is ignored for it).
 * - So `sandbox-paths = /bin /lib /lib64 /usr` is required for `/bin/sh` builders; without it the build
 *   fails with "executing '/bin/sh': No such file or directory".
 * - `build-users-group` may be empty or `nixbld`: both work (user namespaces are available; the builder runs
 *   as uid 1000 inside the sandbox either way). Empty is used here.
 * - The store directory is created on first use (root); its .drv inputs must be imported into it first
 *   (`nix-store --store X --import`), and `--option substituters ''` keeps it from asking a cache.
 * - Do not use Nix's `--builders` into the same store (it deadlocks); closures are shipped by closure.ts.
 */

export interface SshBuilder {
  spec: BuilderSpec;
  /** The builder's chroot store root (its store is `<storeRoot>/nix/store`). */
  storeRoot: string;
  /** The sshd listener's PID. */
  pid: number;
  /** SIGKILLs sshd and every process below it (sessions, nix-store): a builder that died. */
  kill(): Promise<void>;
  /** The builder's processes: sshd and everything below it (sessions, nix-store, the builds in its sandbox). */
  processes(): Array<{ pid: number; cmdline: string }>;
  /**
   * SIGSTOPs sshd and every process below it (until no new one appears): a builder that hangs, answering
   * nothing over SSH while its host's TCP stack still holds the connections. (A `sleep` stopped past its
   * end returns as soon as it is continued: the kernel keeps its deadline.)
   */
  freeze(): Promise<void>;
  /** SIGCONTs every process that `freeze` stopped. */
  thaw(): void;
  /** Stops sshd and its sessions and removes the builder's files. */
  stop(): Promise<void>;
  /** What sshd wrote to stderr (for diagnosing a failing test). */
  log(): string;
}

/** PIDs of every process whose parent chain leads to `rootPid` (not including it). */
export function descendantPids(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(entry);
    if (!stat) continue; // exited meanwhile
    const ppid = Number(stat(4));
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const queue = [rootPid];
  while (queue.length) {
    for (const child of children.get(queue.shift()!) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

/** The command line of a process, its arguments joined by spaces ('' once it has exited). */
export function commandLineOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}

/** PIDs of processes whose command line contains `needle` (e.g. a fixture's nonce). */
export function pidsWithCommandLine(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) pids.push(Number(entry));
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}

/** Whether a process with this PID exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

/**
 * Starts a real OpenSSH server on a free loopback port acting as a Nix builder: its own host key, a
 * generated client key authorised for root, and its own chroot store (`remoteStore`) with a nix.conf
 * (no substituters, sandbox paths for /bin/sh builders) given to sessions through NIX_CONF_DIR.
 */
export async function startSshBuilder(
  opts: {
    name?: string;
    /** false: a nix.conf without sandbox-paths (a misconfigured chroot-store builder). */
    sandboxPaths?: boolean;
    /** A folder searched before the system's on the builder's PATH (a fault-injecting wrapper of a command). */
    pathPrefix?: string;
  } = {},
): Promise<SshBuilder> {
  const name = opts.name ?? 'builder';
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), `ringmaster-sshd-${name}-`));
  const storeRoot = path.join(dir, 'store-root');
  const nixConfDir = path.join(dir, 'nix-conf');
  await fsp.mkdir(storeRoot);
  await fsp.mkdir(nixConfDir);
  await fsp.mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  await fsp.writeFile(
    path.join(nixConfDir, 'nix.conf'),
    ['substituters =', 'sandbox = true', ...(opts.sandboxPaths === false ? [] : ['sandbox-paths = /bin /lib /lib64 /usr']), 'build-users-group =', ''].join('\n'),
  );

  const hostKey = path.join(dir, 'ssh_host_ed25519_key');
  const clientKey = path.join(dir, 'client_ed25519_key');
  await execFileAsync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}-host`, '-f', hostKey]);
  await execFileAsync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}-client`, '-f', clientKey]);
  const authorizedKeys = path.join(dir, 'authorized_keys');
  await fsp.copyFile(`${clientKey}.pub`, authorizedKeys);
  const publicHostKey = (await fsp.readFile(`${hostKey}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');

  const port = await freePort();
  const config = path.join(dir, 'sshd_config');
  await fsp.writeFile(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorizedKeys}`,
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'MaxSessions 64',
      'MaxStartups 100:30:200',
      'LogLevel ERROR',
      // SHLVL=1 keeps bash from sourcing root's ~/.bashrc for every SSH command (bash does so when it sees
      // SSH_CLIENT at shell level 1); this machine's .bashrc costs ~130 ms per command.
      `SetEnv NIX_CONF_DIR=${nixConfDir} PATH=${opts.pathPrefix ? `${opts.pathPrefix}:` : ''}/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin SHLVL=1`,
      '',
    ].join('\n'),
  );

  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString('utf8')).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid!;

  const listening = await waitUntil(() => {
    if (child.exitCode !== null) return true;
    try {
      return fs.readFileSync('/proc/net/tcp', 'utf8').includes(`:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 0A`);
    } catch {
      return false;
    }
  }, 10_000);
  if (!listening || child.exitCode !== null) {
    await fsp.rm(dir, { recursive: true, force: true });
    throw new Error(`sshd did not start: ${stderr}`);
  }

  const killTree = async (signal: NodeJS.Signals) => {
    const pids = [pid, ...descendantPids(pid)];
    for (const p of pids) {
      try { process.kill(p, signal); } catch { /* gone */ }
    }
    await waitUntil(() => pids.every((p) => !alive(p)), 5_000);
  };

  const frozen = new Set<number>();
  const freeze = async () => {
    for (let stable = 0; stable < 2; ) {
      const fresh = [pid, ...descendantPids(pid)].filter((p) => !frozen.has(p));
      stable = fresh.length === 0 ? stable + 1 : 0;
      for (const p of fresh) {
        try { process.kill(p, 'SIGSTOP'); } catch { /* gone */ }
        frozen.add(p);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const thaw = () => {
    for (const p of frozen) {
      try { process.kill(p, 'SIGCONT'); } catch { /* gone */ }
    }
    frozen.clear();
  };

  let stopped = false;
  return {
    spec: {
      id: `test-${name}-${port}`,
      name,
      sshUri: `ssh://root@127.0.0.1:${port}`,
      sshKeyFile: clientKey,
      publicHostKey,
      remoteStore: storeRoot,
    },
    storeRoot,
    pid,
    log: () => stderr,
    async kill() {
      await killTree('SIGKILL');
      await exited;
    },
    processes: () => [pid, ...descendantPids(pid)].map((p) => ({ pid: p, cmdline: commandLineOf(p) })).filter((p) => p.cmdline !== ''),
    freeze,
    thaw,
    async stop() {
      if (stopped) return;
      stopped = true;
      thaw();
      if (alive(pid)) {
        await killTree('SIGTERM');
        await killTree('SIGKILL');
      }
      await exited;
      await fsp.rm(dir, { recursive: true, force: true }).catch(async () => {
        // A chroot store holds read-only directories; make them writable and retry.
        await execFileAsync('chmod', ['-R', 'u+w', dir]).catch(() => undefined);
        await fsp.rm(dir, { recursive: true, force: true });
      });
    },
  };
}
