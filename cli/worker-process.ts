import { loadConfig, type RingmasterConfig } from '../lib/config';
import { createDb } from '../lib/db';
import { createWorker, shutdownWorker } from '../worker/worker';
import { componentLogger } from '../lib/logger';
import { dispatcherTaskQueue } from '../lib/task-queues';
import { onStopSignal, required } from './process-lifecycle';

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
