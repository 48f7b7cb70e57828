import { loadConfig, type RingmasterConfig } from '../lib/config';
import { createDb } from '../lib/db';
import { connectTemporal } from '../api/temporal';
import { startApi } from '../api/server';
import { createWorker, shutdownWorker } from '../worker/worker';
import { componentLogger } from '../lib/logger';
import { version } from '../lib/version';
import { dispatcherTaskQueue } from '../lib/task-queues';

function required(value: string | undefined, name: string): string {
  if (!value) throw new Error(`${name} is required to run this part on its own (see the README's configuration table)`);
  return value;
}

function onStopSignal(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = () => {
    if (stopping) return;
    stopping = true;
    stop().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}

/** `npm run api`: the API alone, against the addresses it is given. */
export async function runApiProcess(config: RingmasterConfig = loadConfig()): Promise<void> {
  const db = createDb(required(config.databaseUrl, 'DATABASE_URL'), { max: config.dbPoolMax });
  const temporal = await connectTemporal(required(config.temporalAddress, 'TEMPORAL_ADDRESS'), config.temporalNamespace, config.taskQueue);
  const api = await startApi({ db, config, temporal, startedAt: new Date(), version }, config.port, config.host, (l) => console.error(l));
  componentLogger('api').info(`listening on ${api.url}`);
  onStopSignal(async () => {
    await api.close();
    await temporal.connection.close();
    await db.destroy();
  });
}

/** `npm run worker`: one worker alone, against the addresses it is given. */
export async function runWorkerProcess(config: RingmasterConfig = loadConfig()): Promise<void> {
  const db = createDb(required(config.databaseUrl, 'DATABASE_URL'), { max: config.dbPoolMax });
  const { worker, connection } = await createWorker({
    address: required(config.temporalAddress, 'TEMPORAL_ADDRESS'),
    namespace: config.temporalNamespace,
    taskQueue: config.taskQueue,
    deps: { db, config },
  });
  componentLogger('worker').info(`polling task queues "${config.taskQueue}" and "${dispatcherTaskQueue(config.taskQueue)}" on ${config.temporalAddress}`);
  const run = worker.run();
  onStopSignal(async () => shutdownWorker(worker, run));
  await run;
  await connection.close();
  await db.destroy();
}
