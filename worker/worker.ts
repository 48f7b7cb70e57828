import { NativeConnection, Worker, Runtime, DefaultLogger } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import type { Db } from '../lib/db';
import type { RingmasterConfig } from '../lib/config';
import { createActivities } from '../activities';
import { BuilderConnectionPool } from '../activities/realise/ssh-connection';
import { currentPrebuiltBundle, workflowsPath } from './bundle';
import { RingmasterWorkflows } from '../lib/workflow-client';

let runtimeInstalled = false;

/** Quiets the SDK's own logging to warnings (once per process). */
export function installQuietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: new DefaultLogger((process.env.RINGMASTER_WORKER_LOG_LEVEL as 'WARN' | undefined) ?? 'WARN') });
  } catch {
    /* already installed */
  }
}

export interface WorkerOptions {
  address: string;
  namespace: string;
  taskQueue: string;
  deps: { db: Db; config: RingmasterConfig };
  /** Bundle the workflows from source even if a prebuilt bundle exists (tests). */
  fromSource?: boolean;
}

export interface RunningWorkerParts {
  worker: Worker;
  connection: { close(): Promise<void> };
}

/** Creates the Ringmaster worker: the workflows from the bundle and the activities made from deps. */
export async function createWorker(opts: WorkerOptions): Promise<RunningWorkerParts> {
  installQuietRuntime();
  const nativeConnection = await NativeConnection.connect({ address: opts.address });
  const clientConnection = await Connection.connect({ address: opts.address });
  const client = new Client({ connection: clientConnection, namespace: opts.namespace });
  const builderPool = new BuilderConnectionPool();
  const bundle = opts.fromSource ? undefined : currentPrebuiltBundle();
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    activities: createActivities({ ...opts.deps, workflows: new RingmasterWorkflows(client, opts.taskQueue), builderPool }),
    ...(bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath }),
    maxConcurrentActivityTaskExecutions: 200,
    maxConcurrentLocalActivityExecutions: 200,
    maxConcurrentWorkflowTaskExecutions: 100,
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
