import crypto from 'node:crypto';
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  type Client,
  type WorkflowSignalWithStartOptions,
} from '@temporalio/client';
import type { SignalDefinition, WithWorkflowArgs } from '@temporalio/common';
import { optionalTsToDate } from '@temporalio/common/lib/time';
import { liveWorkerIdentities, type EagerStartShare } from './eager-starts';
// Types only: the workflow code runs in the worker's sandbox, never in the API or an activity.
import type * as workflows from '../workflows';
import {
  addWaiterSignal,
  buildStatusQuery,
  buildersChangedSignal,
  dispatcherStateQuery,
  buildOutputsQueuedSignal,
  bumpBuildUpdate,
  stepRealisedSignal,
  withdrawRequestSignal,
  type BuildStatusView,
  type StepRealisation,
  type CheckJobsetInput,
  type CheckJobsetResult,
  type DerivationInput,
  type WaiterRef,
} from '../workflows/shared';
import {
  buildWorkflowId,
  checkJobsetWorkflowId,
  derivationWorkflowId,
  dispatcherWorkflowId,
  evaluationWorkflowId,
  jobsetScheduleId,
  scheduledCheckWorkflowId,
  systemProbeWorkflowId,
  builderCheckWorkflowId,
  serveBuildOutputsWorkflowId,
} from './workflow-ids';
import { dispatcherTaskQueue } from './task-queues';
import { deliverNotificationSignal, type NotificationWorkflowInput, type QueuedNotification } from '../workflows/notification-shared';
import type { BuildStatus } from './statuses';
import { buildSearchAttributes, derivationSearchAttributes, RingmasterBuildId, RingmasterStatus, type BuildSearchContext } from './search-attributes';

type Workflows = typeof workflows;
type WorkflowName = keyof Workflows;

/** The registered name of a workflow, checked against what the worker registers (workflows/index.ts). */
function workflowType<N extends WorkflowName>(name: N): N {
  return name;
}

/** What a Temporal Schedule that checks a jobset does. */
export interface JobsetCheckSchedule {
  jobsetId: string;
  intervalSeconds: number;
  note: string;
  memo: Record<string, unknown>;
}

/** What Temporal says about a build's workflow: its execution status and, while it runs, its own status query. */
export interface BuildWorkflowState {
  workflowId: string;
  /** RUNNING, COMPLETED, CANCELLED, …, or null when Temporal does not answer. */
  executionStatus: string | null;
  live: BuildStatusView | null;
}

/**
 * The one place Ringmaster talks to Temporal about its workflows: every start, signal, query, update
 * and cancel goes through here, typed by the workflow functions (`start<typeof BuildWorkflow>`), with
 * the IDs from lib/workflow-ids.ts. The API and the activities each hold one.
 */
export class RingmasterWorkflows {
  constructor(
    readonly client: Client,
    readonly taskQueue: string,
    /**
     * In the worker process, whose client shares the worker's NativeConnection: which build starts ask
     * the server to hand the first workflow task straight back to this worker (lib/eager-starts.ts).
     */
    readonly eagerStarts?: EagerStartShare,
  ) {}

  /** The pollers of Ringmaster's workflow task queue as the server lists them, each with when it last polled. */
  async workflowPollers(): Promise<Array<{ identity: string | null; lastAccessTime: Date | undefined }>> {
    const r = await this.client.workflowService.describeTaskQueue({
      namespace: this.client.options.namespace,
      taskQueue: { name: this.taskQueue },
      taskQueueType: 1, // TASK_QUEUE_TYPE_WORKFLOW
    });
    return (r.pollers ?? []).map((p) => ({ identity: p.identity ?? null, lastAccessTime: optionalTsToDate(p.lastAccessTime) }));
  }

  /**
   * Workflow tasks waiting on Ringmaster's workflow task queue for a worker to take them (the server's
   * approximate backlog; tasks handed to a waiting poller at once are not in it), or null when the server
   * does not report it.
   */
  async workflowTaskBacklog(): Promise<number | null> {
    const r = await this.client.workflowService.describeTaskQueue({
      namespace: this.client.options.namespace,
      taskQueue: { name: this.taskQueue },
      taskQueueType: 1, // TASK_QUEUE_TYPE_WORKFLOW
      reportStats: true,
    });
    const count = r.stats?.approximateBacklogCount;
    return count === undefined || count === null ? null : Number(count);
  }

  /** Worker processes polling Ringmaster's workflow task queue now (distinct identities heard from lately). */
  async countWorkflowWorkers(): Promise<number> {
    return liveWorkerIdentities(await this.workflowPollers(), new Date());
  }

  // ---- builds ----

  /**
   * Starts a build's first run; a build whose workflow already started is left alone. Answers whether
   * the server handed its first workflow task straight to this process's worker (an eager start).
   */
  async startBuild(build: BuildSearchContext & { recorded?: BuildStatus }): Promise<{ eagerly: boolean }> {
    const requestEagerStart = (await this.eagerStarts?.next()) ?? false;
    try {
      const handle = await this.client.workflow.start<Workflows['BuildWorkflow']>(workflowType('BuildWorkflow'), {
        taskQueue: this.taskQueue,
        workflowId: buildWorkflowId(build.buildId),
        args: [{ buildId: build.buildId, ...(build.recorded ? { recorded: build.recorded } : {}) }],
        // A build's first run starts once: a start repeated after a crash finds it, even closed (restart uses ALLOW_DUPLICATE).
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        typedSearchAttributes: buildSearchAttributes(build, build.recorded),
        requestEagerStart,
      });
      return { eagerly: handle.eagerlyStarted };
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      return { eagerly: false };
    }
  }

  /**
   * Starts a new run of a finished build under the same ID, with the same search attributes as its
   * first run. A previous run that recorded its result but has not closed yet is waited for first.
   */
  async restartBuild(build: BuildSearchContext): Promise<void> {
    const start = () =>
      this.client.workflow.start<Workflows['BuildWorkflow']>(workflowType('BuildWorkflow'), {
        taskQueue: this.taskQueue,
        workflowId: buildWorkflowId(build.buildId),
        args: [{ buildId: build.buildId, restart: true }],
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        typedSearchAttributes: buildSearchAttributes(build),
      });
    try {
      await start();
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      await this.waitForBuildToClose(build.buildId, 10_000);
      await start();
    }
  }

  /** Cancels a build's workflow; false when it has none (it never started). */
  async cancelBuild(buildId: string): Promise<boolean> {
    return this.cancel(buildWorkflowId(buildId));
  }

  /** Raises a running build's priority (the `bump` update); false when it has no running workflow. */
  async bumpBuild(buildId: string, priority: number): Promise<boolean> {
    try {
      await this.client.workflow.getHandle<Workflows['BuildWorkflow']>(buildWorkflowId(buildId)).executeUpdate(bumpBuildUpdate, { args: [{ priority }] });
      return true;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  /** Waits up to `ms` for a build's workflow to close, so an answer can show its final status. */
  async waitForBuildToClose(buildId: string, ms: number): Promise<void> {
    const handle = this.client.workflow.getHandle<Workflows['BuildWorkflow']>(buildWorkflowId(buildId));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref();
    });
    await Promise.race([handle.result().then(() => undefined, () => undefined), timeout]);
    clearTimeout(timer);
  }

  /** The build workflow's execution status and, while it runs, its `status` query (answered within `queryMs`). */
  async buildState(buildId: string, queryMs = 2000): Promise<BuildWorkflowState> {
    const workflowId = buildWorkflowId(buildId);
    const handle = this.client.workflow.getHandle<Workflows['BuildWorkflow']>(workflowId);
    try {
      const description = await handle.describe();
      const executionStatus = description.status.name;
      if (executionStatus !== 'RUNNING') return { workflowId, executionStatus, live: null };
      let timer: NodeJS.Timeout | undefined;
      const live = await Promise.race([
        handle.query(buildStatusQuery),
        new Promise<null>((resolve) => {
          timer = setTimeout(() => resolve(null), queryMs);
          timer.unref();
        }),
      ]);
      clearTimeout(timer);
      return { workflowId, executionStatus, live };
    } catch {
      return { workflowId, executionStatus: null, live: null };
    }
  }

  // ---- evaluations ----

  /** Checks a jobset now (the API's trigger) and answers which evaluation that gave. */
  async checkJobset(input: CheckJobsetInput): Promise<CheckJobsetResult> {
    return this.client.workflow.execute<Workflows['CheckJobsetWorkflow']>(workflowType('CheckJobsetWorkflow'), {
      taskQueue: this.taskQueue,
      workflowId: checkJobsetWorkflowId(input.jobsetId, crypto.randomUUID()),
      args: [input],
      workflowExecutionTimeout: '10 minutes',
    });
  }

  /**
   * Starts a jobset check without waiting for it (forge webhooks answer at once). `unique` names the
   * check: a webhook derives it from its delivery, so a delivery starts its check once; answers false
   * when a check of that name had already started.
   */
  async startJobsetCheck(input: CheckJobsetInput, unique: string): Promise<{ workflowId: string; started: boolean }> {
    const workflowId = checkJobsetWorkflowId(input.jobsetId, unique);
    try {
      await this.client.workflow.start<Workflows['CheckJobsetWorkflow']>(workflowType('CheckJobsetWorkflow'), {
        taskQueue: this.taskQueue,
        workflowId,
        args: [input],
        workflowExecutionTimeout: '10 minutes',
      });
      return { workflowId, started: true };
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return { workflowId, started: false };
      throw err;
    }
  }

  /** Cancels an evaluation's workflow (a newer one superseded it); false when it has none. */
  async cancelEvaluation(evaluationId: string): Promise<boolean> {
    return this.cancel(evaluationWorkflowId(evaluationId));
  }

  /** Creates or updates the Temporal Schedule that checks a jobset every `intervalSeconds`. */
  async upsertJobsetSchedule(schedule: JobsetCheckSchedule): Promise<void> {
    const input: CheckJobsetInput = { jobsetId: schedule.jobsetId, trigger: 'interval' };
    const definition = {
      spec: { intervals: [{ every: schedule.intervalSeconds * 1000 }] },
      action: {
        type: 'startWorkflow' as const,
        workflowType: workflowType('CheckJobsetWorkflow'),
        taskQueue: this.taskQueue,
        workflowId: scheduledCheckWorkflowId(schedule.jobsetId),
        args: [input] as [CheckJobsetInput],
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
      state: { paused: false, note: schedule.note },
    };
    const scheduleId = jobsetScheduleId(schedule.jobsetId);
    try {
      await this.client.schedule.create({ scheduleId, ...definition, memo: schedule.memo });
    } catch (err) {
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
      await this.client.schedule.getHandle(scheduleId).update(() => definition);
    }
  }

  /** Deletes a jobset's schedule; one that does not exist is already deleted. */
  async deleteJobsetSchedule(jobsetId: string): Promise<void> {
    try {
      await this.client.schedule.getHandle(jobsetScheduleId(jobsetId)).delete();
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
  }

  // ---- derivations and the dispatcher ----

  /** Registers a build as a waiter of the derivation's shared workflow, starting that workflow if needed. */
  async attachToDerivation(derivation: DerivationInput, waiter: WaiterRef): Promise<void> {
    await this.client.workflow.signalWithStart<Workflows['DerivationWorkflow'], [WaiterRef]>(workflowType('DerivationWorkflow'), {
      workflowId: derivationWorkflowId(this.taskQueue, derivation.drvPath),
      taskQueue: this.taskQueue,
      args: [derivation],
      signal: addWaiterSignal,
      signalArgs: [waiter],
      typedSearchAttributes: derivationSearchAttributes(derivation.system),
    });
  }

  derivationWorkflowId(drvPath: string): string {
    return derivationWorkflowId(this.taskQueue, drvPath);
  }

  /**
   * Stops the batch that realises `drvPath` as an extra (issue 6): the build that wanted it was cancelled
   * before its workflow started (held back while the batch builds it). As a cancelled member does, it
   * interrupts the batch's other derivations, which queue again.
   */
  async stopBatchOfExtra(drvPath: string): Promise<void> {
    await this.signalDispatcher(withdrawRequestSignal, [{ requestId: derivationWorkflowId(this.taskQueue, drvPath), kill: true }]);
  }

  /** Tells a derivation workflow how its derivation ended in a batch; one that has closed meanwhile is no concern. */
  async tellStepRealised(drvPath: string, result: StepRealisation): Promise<void> {
    try {
      await this.client.workflow.getHandle(derivationWorkflowId(this.taskQueue, drvPath)).signal(stepRealisedSignal, result);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }

  /**
   * Sends a signal to this task queue's dispatcher, starting it on first use, on its own task queue
   * (lib/task-queues.ts). A dispatcher that runs already keeps its queue: one started before the
   * dispatcher had a queue of its own moves there by itself (workflows/dispatcher.ts).
   */
  async signalDispatcher<A extends unknown[]>(signal: SignalDefinition<A>, args: A): Promise<void> {
    // The options type is conditional on A, which TypeScript cannot resolve for a generic A.
    const options = { workflowId: dispatcherWorkflowId(this.taskQueue), taskQueue: dispatcherTaskQueue(this.taskQueue), signal, signalArgs: args } as unknown as WithWorkflowArgs<
      Workflows['DispatcherWorkflow'],
      WorkflowSignalWithStartOptions<A>
    >;
    await this.client.workflow.signalWithStart<Workflows['DispatcherWorkflow'], A>(workflowType('DispatcherWorkflow'), options);
  }

  /**
   * Starts this task queue's dispatcher if none runs (a running one is told to reload its builders, which
   * changes nothing), and returns once it has run a workflow task: a query is answered only after the
   * workflow's first task (the worker's warm-up, worker/worker.ts).
   */
  async startDispatcher(): Promise<void> {
    await this.signalDispatcher(buildersChangedSignal, []);
    await this.dispatcherState();
  }

  /** The dispatcher's `state` query, answered after the workflow task that took any signal sent before it. */
  private dispatcherState() {
    return this.client.workflow.getHandle<Workflows['DispatcherWorkflow']>(dispatcherWorkflowId(this.taskQueue)).query(dispatcherStateQuery);
  }

  /**
   * Whether a batch of the dispatcher realises the evaluation's waiting derivations now (asked for with
   * `realiseEvaluation`, which a dispatcher whose builder is busy drops). Asked after that signal, the
   * answer includes it: a query waits for the workflow task that took the signal. Undefined when the
   * dispatcher does not say (older code).
   */
  async dispatcherRealisesEvaluation(evaluationId: string): Promise<boolean | undefined> {
    const view = await this.dispatcherState();
    return view.evaluationBatches === undefined ? undefined : view.evaluationBatches.includes(evaluationId);
  }

  /** Tells a running dispatcher that the builders changed; false when none runs (it loads them when it starts). */
  async notifyDispatcherOfBuilders(): Promise<boolean> {
    try {
      await this.client.workflow.getHandle<Workflows['DispatcherWorkflow']>(dispatcherWorkflowId(this.taskQueue)).signal(buildersChangedSignal);
      return true;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  // ---- the system probe ----

  /** A round trip through a worker: one workflow task and one activity; answers the worker's host name. */
  async probeSystem(timeout = '15 seconds'): Promise<{ activity: string }> {
    return this.client.workflow.execute<Workflows['SystemProbeWorkflow']>(workflowType('SystemProbeWorkflow'), {
      taskQueue: this.taskQueue,
      workflowId: systemProbeWorkflowId(crypto.randomUUID()),
      workflowExecutionTimeout: timeout,
      args: [],
    });
  }

  // ---- notifications ----

  /**
   * Hands a notification to its ordering key's NotificationWorkflow (`workflowId`, from
   * lib/workflow-ids.ts): signal-with-start, so the key's workflow is started if it is not running and
   * otherwise gets the task queued behind the ones it has.
   */
  async queueNotification(workflowId: string, initial: NotificationWorkflowInput, queued: QueuedNotification): Promise<void> {
    await this.client.workflow.signalWithStart<Workflows['NotificationWorkflow'], [QueuedNotification]>(workflowType('NotificationWorkflow'), {
      workflowId,
      taskQueue: this.taskQueue,
      args: [initial],
      signal: deliverNotificationSignal,
      signalArgs: [queued],
    });
  }

  // ---- the binary cache ----


  /** Wakes this task queue's ServeBuildOutputsWorkflow (starting it if none runs): builds' outputs are queued to be served. */
  async wakeBuildOutputsServer(): Promise<void> {
    await this.client.workflow.signalWithStart<Workflows['ServeBuildOutputsWorkflow'], []>(workflowType('ServeBuildOutputsWorkflow'), {
      workflowId: serveBuildOutputsWorkflowId(this.taskQueue),
      taskQueue: this.taskQueue,
      args: [],
      signal: buildOutputsQueuedSignal,
      signalArgs: [],
    });
  }

  // ---- builder checks ----

  /** Builds a trivial derivation on the builder (BuilderCheckWorkflow) and waits for it; the outcome is on the builder's row. */
  async checkBuilder(builderId: string, timeout: string): Promise<void> {
    await this.client.workflow.execute<Workflows['BuilderCheckWorkflow']>(workflowType('BuilderCheckWorkflow'), {
      taskQueue: this.taskQueue,
      workflowId: builderCheckWorkflowId(builderId, crypto.randomUUID()),
      workflowExecutionTimeout: timeout,
      args: [{ builderId }],
    });
  }

  private async cancel(workflowId: string): Promise<boolean> {
    try {
      await this.client.workflow.getHandle(workflowId).cancel();
      return true;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }
}

