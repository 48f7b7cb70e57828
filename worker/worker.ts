import { NativeConnection, Worker, Runtime, DefaultLogger } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import { currentPrebuiltBundle, workflowsPath } from './bundle';

let runtimeInstalled = false;

/** Quiets the SDK's own logging to warnings (once per process). */
export function installQuietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    /* already installed */
  }
}

export interface WorkerOptions {
  address: string;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  /** Bundle the workflows from source even if a prebuilt bundle exists (tests). */
  fromSource?: boolean;
}

/** Creates the Ringmaster worker: the workflows from the bundle and the activities made from deps. */
export async function createWorker(opts: WorkerOptions): Promise<{ worker: Worker; connection: NativeConnection }> {
  installQuietRuntime();
  const connection = await NativeConnection.connect({ address: opts.address });
  const bundle = opts.fromSource ? undefined : currentPrebuiltBundle();
  const worker = await Worker.create({
    connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    activities: createActivities(opts.deps),
    ...(bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath }),
    maxConcurrentActivityTaskExecutions: 200,
    maxConcurrentLocalActivityExecutions: 200,
    maxConcurrentWorkflowTaskExecutions: 100,
  });
  return { worker, connection };
}
