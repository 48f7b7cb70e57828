import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type RingmasterConfig } from '../../lib/config';
import { createDb, migrateLatest, type Db } from '../../lib/db';
import { ensureDatabase } from '../../lib/embedded-postgres';
import { connectTemporal, type TemporalDeps } from '../../api/temporal';
import { startApi, type RunningApi } from '../../api/server';
import { createApiKey } from '../../api/queries/api-keys';
import type { Role } from '../../api/route';
import { createWorker, shutdownWorker, type RingmasterWorker } from '../../worker/worker';
import type { Logger } from '../../lib/logger';
import { sharedServicesFromEnv, startTestServices, type TestServices } from './services';

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

export interface RequestOptions {
  key?: string;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
}

/**
 * One test file's Ringmaster: a fresh database on the shared PostgreSQL, a worker on its own task
 * queue of the shared Temporal dev server, and the API on a free port. `stop()` always tears all down.
 */
export interface TestStack {
  db: Db;
  config: RingmasterConfig;
  temporal: TemporalDeps;
  taskQueue: string;
  url: string;
  dataDir: string;
  databaseUrl: string;
  temporalAddress: string;
  adminKey: string;
  keyFor(role: Role): Promise<string>;
  request<T = any>(method: string, path: string, opts?: RequestOptions): Promise<ApiResponse<T>>;
  /** Starts the worker (again, e.g. after stopWorker). */
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  /** Settles once the worker's warm-up after it started has ended (its first workflow tasks; worker/worker.ts). */
  workerWarmedUp(): Promise<void>;
  stop(): Promise<void>;
}

export interface TestStackOptions {
  worker?: boolean;
  env?: Record<string, string>;
  /** A Temporal server of the test's own instead of the shared one (e.g. one the test restarts). */
  temporalAddress?: string;
  /** A PostgreSQL server of the test's own instead of the shared one (e.g. one the test restarts). */
  postgresBaseUrl?: string;
  /** The worker's logger (operator lines), e.g. one writing to a stream the test reads. */
  logger?: Logger;
}

/**
 * Runs one step of a stack's start, saying on stderr when it has taken more than a minute: a test file that
 * hangs in its `before` reports none of its tests, so this names the step it hangs in.
 */
async function slowStepNamed<T>(name: string, step: () => Promise<T>): Promise<T> {
  const started = Date.now();
  const timer = setInterval(() => console.error(`startTestStack: still ${name} after ${Math.round((Date.now() - started) / 1000)} s`), 60_000);
  try {
    return await step();
  } finally {
    clearInterval(timer);
  }
}

export async function startTestStack(opts: TestStackOptions = {}): Promise<TestStack> {
  let own: TestServices | undefined;
  let shared = sharedServicesFromEnv();
  if (!shared) {
    own = await startTestServices();
    shared = { temporalAddress: own.temporalAddress, postgresBaseUrl: own.postgresBaseUrl };
  }
  if (opts.temporalAddress) shared = { ...shared, temporalAddress: opts.temporalAddress };
  if (opts.postgresBaseUrl) shared = { ...shared, postgresBaseUrl: opts.postgresBaseUrl };
  const suffix = crypto.randomBytes(6).toString('hex');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-stack-'));
  const databaseUrl = await slowStepNamed('creating its database', () => ensureDatabase(shared!.postgresBaseUrl, `test_${suffix}`));
  const taskQueue = `test-${suffix}`;
  const config: RingmasterConfig = {
    ...loadConfig({ ...process.env, ...opts.env }),
    dataDir,
    databaseUrl,
    temporalAddress: shared.temporalAddress,
    taskQueue,
    configFile: path.join(dataDir, 'ringmaster.json'),
    // GC roots stay inside the test's data folder (no real roots) unless the test names a store's gcroots dir.
    gcRootsDir: opts.env?.RINGMASTER_GC_ROOTS_DIR ?? path.join(dataDir, 'gcroots'),
  };
  const db = createDb(databaseUrl);
  await slowStepNamed('migrating its database', () => migrateLatest(db));
  const temporal = await slowStepNamed('connecting to Temporal', () => connectTemporal(shared!.temporalAddress, config.temporalNamespace, taskQueue));

  let worker: RingmasterWorker | undefined;
  let workerRun: Promise<void> | undefined;
  let workerConnection: { close(): Promise<void> } | undefined;
  const startWorker = async () => {
    const created = await createWorker({ address: shared!.temporalAddress, namespace: config.temporalNamespace, taskQueue, deps: { db, config, logger: opts.logger } });
    worker = created.worker;
    workerConnection = created.connection;
    workerRun = worker.run();
  };
  const stopWorker = async () => {
    if (!worker) return;
    await shutdownWorker(worker, workerRun?.catch(() => {}));
    await workerConnection?.close();
    worker = undefined;
  };
  if (opts.worker !== false) await slowStepNamed('starting its worker', startWorker);

  const api: RunningApi = await slowStepNamed('starting its API', () => startApi({ db, config, temporal, startedAt: new Date(), version: 'test' }, 0, '127.0.0.1', (l) => console.error(l)));
  const admin = await slowStepNamed('creating its admin key', () => createApiKey(db, { name: 'test-admin', role: 'admin' }));

  const request = async <T,>(method: string, p: string, o: RequestOptions = {}): Promise<ApiResponse<T>> => {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    if (o.key) headers.authorization = `Bearer ${o.key}`;
    let body: string | undefined;
    if (o.rawBody !== undefined) body = o.rawBody;
    else if (o.body !== undefined) {
      body = JSON.stringify(o.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${api.url}${p}`, { method, headers, body, redirect: 'manual' });
    const text = await res.text();
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text);
    return { status: res.status, body: parsed as T, text, headers: res.headers };
  };

  return {
    db,
    config,
    temporal,
    taskQueue,
    url: api.url,
    dataDir,
    databaseUrl,
    temporalAddress: shared.temporalAddress,
    adminKey: admin.key,
    keyFor: async (role) => (await createApiKey(db, { name: `test-${role}`, role })).key,
    request,
    startWorker,
    stopWorker,
    workerWarmedUp: async () => worker?.warmedUp(),
    async stop() {
      await api.close().catch(() => {});
      await stopWorker().catch(() => {});
      await temporal.connection.close().catch(() => {});
      await db.destroy().catch(() => {});
      fs.rmSync(dataDir, { recursive: true, force: true });
      if (own) await own.stop();
    },
  };
}
