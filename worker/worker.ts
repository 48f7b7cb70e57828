import { NativeConnection, Worker } from '@temporalio/worker';
import { Client } from '@temporalio/client';
import { EagerStartShare } from '../lib/eager-starts';
import type { Db } from '../lib/db';
import type { RingmasterConfig } from '../lib/config';
import { createActivities } from '../activities';
import { BuilderConnectionPool } from '../activities/realise/ssh-connection';
import { rootLogger, type Logger } from '../lib/logger';
import { currentOrRebuiltBundle, workflowBundleCode } from './bundle';
import { dispatcherTaskQueue } from '../lib/task-queues';
import { RingmasterWorkflows } from '../lib/workflow-client';
import { installRuntime } from './runtime';
import { localStore } from '../activities/nix/store-serve';
import { favourMemoryOverSpeed } from './v8-heap';
import { keepWorkerLease, leaseKeyOf, recordRunningActivities, watchForEndedWorkers } from './ended-workers';
import { thisProcessIdentity } from '../lib/process-identity';

export interface WorkerOptions {
  address: string;
  namespace: string;
  taskQueue: string;
  deps: { db: Db; config: RingmasterConfig; logger?: Logger };
  /** Bundle the workflows in this process, from source, even if a prebuilt bundle exists. */
  fromSource?: boolean;
}

/**
 * Stops the worker process's workers and waits for their run to end (their activities finish first).
 */
export async function shutdownWorker(worker: RingmasterWorker, run: Promise<void> | undefined): Promise<void> {
  worker.shutdown();
  await run;
}

/**
 * The worker process's two Temporal workers, run and stopped together:
 * - `main` polls the deployment's task queue: evaluations, builds, derivations, notifications, and the
 *   activities they run;
 * - `dispatch` polls `<taskQueue>-dispatch` (lib/task-queues.ts), where only the DispatcherWorkflow runs
 *   (with its local activities and its batches' `realiseBatch`). Its workflow tasks never queue behind
 *   the builds' backlog, and its own workflow thread never waits for theirs.
 */
export class RingmasterWorker {
  constructor(
    readonly main: Worker,
    readonly dispatch: Worker,
    /** Called once both poll (`warmUp`); its failure is only logged. */
    private readonly onPolling?: () => Promise<void>,
  ) {}

  private warm: Promise<void> | undefined;

  /** Settles once the warm-up that `run` starts has ended (at once without one); never rejects. */
  warmedUp(): Promise<void> {
    return this.warm ?? Promise.resolve();
  }

  /** Runs both; when one of them fails the other is stopped, and the failure is what `run` throws. */
  async run(): Promise<void> {
    const runs = [this.main, this.dispatch].map((w) =>
      w.run().catch((err: unknown) => {
        this.shutdown();
        throw err;
      }),
    );
    this.warm = this.onPolling?.().catch(() => undefined);
    const settled = await Promise.allSettled(runs);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Asks both to stop (only those still running: a second request on a draining worker throws). */
  shutdown(): void {
    for (const w of [this.main, this.dispatch]) if (w.getState() === 'RUNNING') w.shutdown();
  }
}

export interface RunningWorkerParts {
  worker: RingmasterWorker;
  connection: { close(): Promise<void> };
}

/**
 * Creates the worker process's workers (the main one and the dispatcher's): the workflows from one
 * bundle and the activities made from deps, shared by both.
 */
export async function createWorker(opts: WorkerOptions): Promise<RunningWorkerParts> {
  const logger = opts.deps.logger ?? rootLogger();
  installRuntime({ logger, workerMetricsAddress: opts.deps.config.workerMetricsAddress });
  if (opts.deps.config.workerOptimizeForSize) favourMemoryOverSpeed();
  const nativeConnection = await NativeConnection.connect({ address: opts.address });
  const client = new Client({ connection: nativeConnection, namespace: opts.namespace });
  const builderPool = new BuilderConnectionPool();
  // One bundle for both workers: the prebuilt file (rebuilt by a child process when stale), or bundled here.
  const workflowBundle = opts.fromSource ? { code: await workflowBundleCode() } : { codePath: await currentOrRebuiltBundle() };
  // Build starts from this process may hand their first workflow task straight to its worker (its share of them).
  const eagerStarts: EagerStartShare = new EagerStartShare((): Promise<number> => workflows.countWorkflowWorkers());
  const workflows = new RingmasterWorkflows(client, opts.taskQueue, eagerStarts);
  const activities = createActivities({ ...opts.deps, logger, workflows, builderPool });
  // Long-heartbeat activity attempts are recorded while they run, so that if this process dies another on
  // this machine fails them within seconds, not at their heartbeat timeout (worker/ended-workers.ts).
  // Another worker anywhere (another container, another machine) tells that this one is gone by its lease.
  const workerLog = logger.child({ component: 'worker' });
  const self = thisProcessIdentity();
  const leaseMs = opts.deps.config.workerLeaseSeconds * 1000;
  const interceptors = { activity: [recordRunningActivities(opts.deps.db, workerLog, self, self ? leaseKeyOf(self) : null)] };
  const main = await Worker.create({
    connection: nativeConnection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    activities,
    interceptors,
    workflowBundle,
    maxConcurrentActivityTaskExecutions: 200,
    maxConcurrentLocalActivityExecutions: 200,
    // A workflow task holds its slot while its local activities run (database, signals): with 10 slots
    // bench/dag's planned derivations queued behind each other with the CPU half idle (40 slots and a
    // pool of 20 connections: 3.6x nix-build instead of 5.2x, same load). Workflow code itself runs
    // on one thread, a few ms per task. Far more (hundreds) on a busy machine let tasks overrun their
    // 10 s timeout ("Task not found when completing") and be done again: a retry storm.
    maxConcurrentWorkflowTaskExecutions: opts.deps.config.workflowTaskSlots,
    maxCachedWorkflows: opts.deps.config.maxCachedWorkflows,
    // Heartbeats reach the server within a second, so a cancelled build step is killed promptly.
    maxHeartbeatThrottleInterval: '1 second',
  });
  const dispatch = await Worker.create({
    connection: nativeConnection,
    namespace: opts.namespace,
    taskQueue: dispatcherTaskQueue(opts.taskQueue),
    activities,
    interceptors,
    workflowBundle,
    // One dispatcher per deployment: its run, and the one it continues as, are all this worker caches.
    maxCachedWorkflows: 4,
    maxConcurrentWorkflowTaskExecutions: 2,
    maxConcurrentLocalActivityExecutions: 10,
    // Its activities are the batches' realiseBatch: at most one per free slot of the worker's own Nix.
    maxConcurrentActivityTaskExecutions: 50,
    maxHeartbeatThrottleInterval: '1 second',
  });
  // Written before the workers poll (the attempts they record name it), renewed until close.
  const lease = self ? await keepWorkerLease({ db: opts.deps.db, logger: workerLog }, self, leaseMs) : undefined;
  // Activities left running by a worker process that has ended are failed, so they run again: 6 s after a
  // process of this machine is seen ended, or once the lease of one elsewhere has lapsed.
  const stopWatchingForEndedWorkers = watchForEndedWorkers({ db: opts.deps.db, client, logger: workerLog }, { self, leaseMs });
  return {
    worker: new RingmasterWorker(main, dispatch, () => warmUp(workflows, workerLog)),
    connection: {
      async close() {
        await stopWatchingForEndedWorkers();
        await lease?.stop();
        await builderPool.closeAll().catch(() => undefined);
        localStore.close();
        await nativeConnection.close().catch(() => undefined);
      },
    },
  };
}

/**
 * What a worker does once it polls, before any work arrives (issue 6): each of its two workers runs its
 * first workflow task, the slowest one (the workflow sandbox and the SDK's code paths are cold: about
 * 140 ms each here, against 15 ms warm), so the first evaluation after a start does not pay for them.
 * - The dispatcher is started (or, running, told to reload its builders, which changes nothing), and
 *   asked its state, which it answers after its first task: that task loads the builders, and it then
 *   waits for work as it would after the first request.
 * - A system probe (the round trip of `GET /admin/system`: a workflow task and an activity on the main
 *   task queue), whose time is logged.
 * A failure is logged: the first real task then pays the cold start instead.
 */
async function warmUp(workflows: RingmasterWorkflows, log: Logger): Promise<void> {
  const started = Date.now();
  const dispatcher = workflows.startDispatcher().catch((err: Error) => log.warn(`could not start the dispatcher: ${err.message}`));
  await workflows.probeSystem().then(
    () => log.info(`worker ready: a workflow task and an activity through Temporal took ${Date.now() - started} ms`),
    (err: Error) => log.warn(`the worker's first round trip through Temporal failed: ${err.message}`),
  );
  await dispatcher;
}
