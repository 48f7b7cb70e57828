import fs from 'node:fs';
import path from 'node:path';
import type { RingmasterConfig } from '../lib/config';
import { migrateLatest } from '../lib/db';
import { findTemporalCli, MISSING_CLI_MESSAGE, startTemporalDevServer, ensureNamespaceReady, type RunningDevServer } from '../lib/temporal-dev-server';
import { connectTemporal } from '../api/temporal';
import { startApi } from '../api/server';
import { createWorker } from '../worker/worker';
import { openDatabase } from './database';
import { version } from '../lib/version';

const log = (part: string, line: string) => console.log(`[${part}] ${line}`);

/** `npm start`: one machine's whole stack. Ctrl-C or SIGTERM stops every part, children by PID. */
export async function startStack(config: RingmasterConfig): Promise<void> {
  fs.mkdirSync(config.dataDir, { recursive: true });
  const stops: Array<() => Promise<void>> = [];
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    log('ringmaster', 'stopping');
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch (err) {
        console.error(err);
      }
    }
    log('ringmaster', 'stopped');
    process.exit(code);
  };
  process.once('SIGINT', () => void stopAll(0));
  process.once('SIGTERM', () => void stopAll(0));

  try {
    // PostgreSQL: DATABASE_URL, or the embedded server under the data folder.
    const { db, url, pg } = await openDatabase(config, (l) => {
      if (/FATAL|ERROR|PANIC/.test(l)) console.error(l);
    });
    if (pg?.owned) stops.push(() => pg.stop());
    stops.push(() => db.destroy());
    log('postgres', config.databaseUrl ? 'using DATABASE_URL' : `embedded PostgreSQL on 127.0.0.1:${pg?.port} (data in ${path.join(config.dataDir, 'postgres')})`);
    const applied = await migrateLatest(db);
    if (applied.length) log('migrate', `applied ${applied.join(', ')}`);

    // Temporal: TEMPORAL_ADDRESS, or a dev server with its SQLite file under the data folder.
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
      stops.push(() => server.stop());
      temporalAddress = server.address;
      uiUrl = server.uiUrl;
      log('temporal', `dev server (pid ${server.child.pid}) on ${server.address}, state in ${path.join(config.dataDir, 'temporal.sqlite')}`);
    } else {
      await ensureNamespaceReady(temporalAddress, config.temporalNamespace, 60_000);
      log('temporal', `using ${temporalAddress}, namespace ${config.temporalNamespace}`);
    }

    const { worker, connection } = await createWorker({ address: temporalAddress, namespace: config.temporalNamespace, taskQueue: config.taskQueue, deps: { db, config } });
    const workerRun = worker.run();
    stops.push(async () => {
      worker.shutdown();
      await workerRun;
      await connection.close();
    });
    workerRun.catch((err) => {
      console.error('[worker] failed:', err);
      void stopAll(1);
    });
    log('worker', `polling task queue "${config.taskQueue}"`);

    const temporal = await connectTemporal(temporalAddress, config.temporalNamespace, config.taskQueue);
    stops.push(() => temporal.connection.close());
    const api = await startApi({ db, config, temporal, startedAt: new Date(), version }, config.port, config.host, (l) => console.error(l));
    stops.push(() => api.close());

    console.log('');
    console.log(`Ringmaster ${version} is running.`);
    console.log(`  API:          ${api.url}/api/v1`);
    console.log(`  OpenAPI:      ${api.url}/api/v1/openapi.json`);
    console.log(`  Health:       ${api.url}/health`);
    console.log(`  Temporal UI:  ${uiUrl ?? '(external cluster: see its own UI)'}`);
    console.log(`  Database:     ${config.databaseUrl ? 'DATABASE_URL' : url.replace(/:[^:@/]+@/, ':***@')}`);
    console.log('Create an admin key with: npx ringmaster api-key create --name admin --role admin');
    console.log('Press Ctrl-C to stop.');
  } catch (err) {
    console.error(`[ringmaster] failed to start: ${(err as Error).message}`);
    await stopAll(1);
  }
}
