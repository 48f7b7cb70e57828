import fs from 'node:fs';
import { sealStoredSecretsStep } from './secret-key';
import path from 'node:path';
import type { RingmasterConfig } from '../lib/config';
import { migrateLatest } from '../lib/db';
import { componentLogger, rootLogger } from '../lib/logger';
import { findTemporalCli, MISSING_CLI_MESSAGE, startTemporalDevServer, ensureNamespaceReady, type RunningDevServer } from '../lib/temporal-dev-server';
import { connectTemporal } from '../api/temporal';
import { startApi } from '../api/server';
import { createWorker, shutdownWorker } from '../worker/worker';
import { openDatabase } from './database';
import { version } from '../lib/version';
import { dispatcherTaskQueue } from '../lib/task-queues';

/** PostgreSQL's own lines worth an operator's attention (the rest is debug). */
const POSTGRES_TROUBLE = /FATAL|ERROR|PANIC/;

/**
 * `npm start`: one machine's whole stack. Ctrl-C or SIGTERM stops every part in reverse order,
 * children by PID, and exits 0; a second Ctrl-C while stopping is ignored.
 */
export async function startStack(config: RingmasterConfig): Promise<void> {
  const logger = rootLogger();
  const log = componentLogger('ringmaster', logger);
  fs.mkdirSync(config.dataDir, { recursive: true });
  const stops: Array<{ part: string; stop: () => Promise<void> }> = [];
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping');
    for (const { part, stop } of stops.reverse()) {
      try {
        await stop();
      } catch (err) {
        componentLogger(part, logger).warn({ err: (err as Error).message }, `${part} did not stop cleanly: ${(err as Error).message}`);
      }
    }
    log.info({ exit_code: code }, 'stopped');
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  try {
    // PostgreSQL: DATABASE_URL, or the embedded server under the data folder.
    const pgLog = componentLogger('postgres', logger);
    const { db, url, pg } = await openDatabase(config, (l) => {
      if (POSTGRES_TROUBLE.test(l)) pgLog.warn(l.replace(/^\[postgres\] /, ''));
      else pgLog.debug(l.replace(/^\[postgres\] /, ''));
    });
    if (pg?.owned) stops.push({ part: 'postgres', stop: () => pg.stop() });
    stops.push({ part: 'postgres', stop: () => db.destroy() });
    pgLog.info(config.databaseUrl ? 'using DATABASE_URL' : `embedded PostgreSQL on 127.0.0.1:${pg?.port} (data in ${path.join(config.dataDir, 'postgres')})`);
    const applied = await migrateLatest(db);
    if (applied.length) componentLogger('migrate', logger).info({ migrations: applied }, `applied ${applied.join(', ')}`);
    await sealStoredSecretsStep(db, config, (l) => componentLogger('migrate', logger).info(l));

    // Temporal: TEMPORAL_ADDRESS, or a dev server with its SQLite file under the data folder.
    const temporalLog = componentLogger('temporal', logger);
    let temporalAddress = config.temporalAddress;
    let uiUrl: string | undefined;
    if (!temporalAddress) {
      const cli = findTemporalCli(config.dataDir, config.temporalCli);
      if (!cli) throw new Error(MISSING_CLI_MESSAGE);
      const server: RunningDevServer = await startTemporalDevServer({
        cli,
        dbFile: path.join(config.dataDir, 'temporal.sqlite'),
        port: config.temporalPort,
        uiPort: config.temporalUiPort,
        namespace: config.temporalNamespace,
        logFile: path.join(config.dataDir, 'temporal.log'),
      });
      stops.push({ part: 'temporal', stop: () => server.stop() });
      temporalAddress = server.address;
      uiUrl = server.uiUrl;
      temporalLog.info(`dev server (pid ${server.child.pid}) on ${server.address}, state in ${path.join(config.dataDir, 'temporal.sqlite')}`);
    } else {
      await ensureNamespaceReady(temporalAddress, config.temporalNamespace, 60_000);
      temporalLog.info(`using ${temporalAddress}, namespace ${config.temporalNamespace}`);
    }

    const workerLog = componentLogger('worker', logger);
    const { worker, connection } = await createWorker({ address: temporalAddress, namespace: config.temporalNamespace, taskQueue: config.taskQueue, deps: { db, config, logger } });
    const workerRun = worker.run();
    stops.push({
      part: 'worker',
      stop: async () => {
        await shutdownWorker(worker, workerRun.catch(() => undefined));
        await connection.close();
      },
    });
    workerRun.catch((err: Error) => {
      if (stopping) return;
      workerLog.error({ err: err.message }, `worker failed: ${err.message}`);
      void stopAll(1);
    });
    workerLog.info(`polling task queues "${config.taskQueue}" and "${dispatcherTaskQueue(config.taskQueue)}"`);

    const temporal = await connectTemporal(temporalAddress, config.temporalNamespace, config.taskQueue);
    stops.push({ part: 'api', stop: () => temporal.connection.close() });
    const apiLog = componentLogger('api', logger);
    const api = await startApi({ db, config, temporal, startedAt: new Date(), version }, config.port, config.host, (l) => apiLog.error(l));
    stops.push({ part: 'api', stop: () => api.close() });

    log.info(
      { version, api: `${api.url}/api/v1`, openapi: `${api.url}/api/v1/openapi.json`, health: `${api.url}/health`, temporal_ui: uiUrl ?? null },
      [
        `Ringmaster ${version} is running.`,
        `  API:          ${api.url}/api/v1`,
        `  OpenAPI:      ${api.url}/api/v1/openapi.json`,
        `  Health:       ${api.url}/health`,
        `  Temporal UI:  ${uiUrl ?? '(external cluster: see its own UI)'}`,
        `  Database:     ${config.databaseUrl ? 'DATABASE_URL' : url.replace(/:[^:@/]+@/, ':***@')}`,
        'Create an admin key with: npx ringmaster api-key create --name admin --role admin',
        'Press Ctrl-C to stop.',
      ].join('\n'),
    );
  } catch (err) {
    log.error(`failed to start: ${(err as Error).message}`);
    await stopAll(1);
  }
}
