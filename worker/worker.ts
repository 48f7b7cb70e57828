import { NativeConnection, Worker } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import type { Db } from '../lib/db';
import type { RingmasterConfig } from '../lib/config';
import { createActivities } from '../activities';
import { BuilderConnectionPool } from '../activities/realise/ssh-connection';
import { rootLogger, type Logger } from '../lib/logger';
import { currentPrebuiltBundle, workflowsPath } from './bundle';
import { RingmasterWorkflows } from '../lib/workflow-client';
import { installRuntime } from './runtime';

export interface WorkerOptions {
  address: string;
  namespace: string;
  taskQueue: string;
  deps: { db: Db; config: RingmasterConfig; logger?: Logger };
  /** Bundle the workflows from source even if a prebuilt bundle exists (tests). */
  fromSource?: boolean;
}

/**
 * Stops a worker and waits for its run to end: asks it to shut down only while it runs (a second
 * request on a draining worker throws IllegalStateError), then waits for its activities to finish.
 */
export async function shutdownWorker(worker: Worker, run: Promise<void> | undefined): Promise<void> {
  if (worker.getState() === 'RUNNING') worker.shutdown();
  await run;
}

export interface RunningWorkerParts {
  worker: Worker;
  connection: { close(): Promise<void> };
}

/** Creates the Ringmaster worker: the workflows from the bundle and the activities made from deps. */
export async function createWorker(opts: WorkerOptions): Promise<RunningWorkerParts> {
  const logger = opts.deps.logger ?? rootLogger();
  installRuntime({ logger, workerMetricsAddress: opts.deps.config.workerMetricsAddress });
  const nativeConnection = await NativeConnection.connect({ address: opts.address });
  const clientConnection = await Connection.connect({ address: opts.address });
  const client = new Client({ connection: clientConnection, namespace: opts.namespace });
  const builderPool = new BuilderConnectionPool();
  const bundle = opts.fromSource ? undefined : currentPrebuiltBundle();
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    activities: createActivities({ ...opts.deps, logger, workflows: new RingmasterWorkflows(client, opts.taskQueue), builderPool }),
    ...(bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath }),
    maxConcurrentActivityTaskExecutions: 200,
    maxConcurrentLocalActivityExecutions: 200,
    // Workflow tasks share one thread: with many in flight on a busy machine each waits for all the
    // others, overruns its 10 s timeout ("Task not found when completing") and is done again, so
    // load turned into a retry storm. Fewer at once keeps each one short; throughput stays the same.
    maxConcurrentWorkflowTaskExecutions: 10,
    maxCachedWorkflows: 2000,
    // Heartbeats reach the server within a second, so a cancelled build step is killed promptly.
    maxHeartbeatThrottleInterval: '1 second',
  });
  return {
    worker,
    connection: {
      async close() {
        await builderPool.closeAll().catch(() => undefined);
        await clientConnection.close().catch(() => undefined);
        await nativeConnection.close().catch(() => undefined);
      },
    },
  };
}
