import {
  ActivityCancellationType,
  CancellationScope,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  makeContinueAsNewFunc,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
  allHandlersFinished,
} from '@temporalio/workflow';
import type { DispatchActivities } from '../activities/dispatch';
import type { BatchActivities } from '../activities/realise-batch';
import { aheadOf, assignSlots, batchBuilderOrder, batchShare, builtAlongElsewhere, formBatch, isAvailable, unsupportedRequests, type DispatchBuilder, type QueuedRequest } from './dispatch-policy';
import {
  LOCAL_BUILDER,
  stepRealisedSignal,
  buildersChangedSignal,
  dispatcherStateQuery,
  releaseSlotSignal,
  reprioritizeSignal,
  requestSlotSignal,
  slotGrantedSignal,
  withdrawRequestSignal,
  batchExtrasSignal,
  realiseEvaluationSignal,
  type BatchExtras,
  type RealiseBatchInput,
  type SlotGrant,
  type SlotRelease,
} from './shared';
import { inBatches } from './in-batches';
import { dispatcherTaskQueue } from '../lib/task-queues';
import { taskQueueOfDispatcher } from '../lib/workflow-ids';

/**
 * patched() ID (issue 6): the slots a round assigns are granted all at once (one workflow task),
 * not one signal and one workflow task after another.
 */
const GRANTS_AT_ONCE_PATCH = 'dispatcher-grants-at-once';

/**
 * patched() ID (issue 6): queued requests that may be batched (`batch` set) and go to the worker's own
 * Nix are handed, as many as wait, to one `realiseBatch` activity (one `nix-store --realise --max-jobs
 * <slots>`) holding the builder's free slots, instead of one grant each. The activity tells each member
 * its result; its completion frees the slots.
 */
const BATCHES_PATCH = 'dispatcher-realises-local-steps-in-batches';

/**
 * patched() ID (issue 6): the dispatcher runs on a task queue of its own (`<taskQueue>-dispatch`, polled
 * by every worker process beside the main one), so its workflow tasks never wait behind the builds' and
 * derivations' backlog. A run found on the main task queue (started before this change, or by an older
 * client) continues as new onto its own queue at its next workflow task, once its running batches are
 * done; every later continue-as-new keeps it there.
 */
const OWN_TASK_QUEUE_PATCH = 'dispatcher-runs-on-its-own-task-queue';

/**
 * patched() ID (issue 6): SSH builders take batches too (one `realiseBatch` activity per batch: its
 * missing closure copied once, one remote `nix-store --realise --max-jobs <slots>`), the fastest free
 * builder first; before, only the worker's own Nix did.
 */
const REMOTE_BATCHES_PATCH = 'dispatcher-realises-remote-steps-in-batches';

/**
 * patched() ID (issue 6): when several builders take batches, the members whose inputs are built are
 * split among the builders with free slots (in proportion to free slots × speed, `batchShare`) instead
 * of all going to the first one while the others idle; members queued ahead of their inputs stay together.
 */
const SPLIT_BATCHES_PATCH = 'dispatcher-splits-batches-among-builders';

/**
 * patched() ID (issue 6): a batch on the only enabled builder, when no other running batch does so, also
 * realises the derivations of its first member's evaluation that wait for their turn (`BatchExtras`),
 * with all the builder's free slots: Nix realises the evaluation at its own pace while the builds'
 * workflows catch up, instead of batches as small as what those workflows had queued.
 */
const EXTRAS_PATCH = 'batch-realises-its-evaluations-waiting-derivations';

/** The most extras one batch takes beside its members. */
const MAX_BATCH_EXTRAS = 200;

const { loadDispatchBuilders, recordBuilderOutcome } = proxyLocalActivities<DispatchActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5 },
});
const { realiseBatch } = proxyActivities<BatchActivities>({
  // A batch runs as long as its members take; the heartbeat is what notices a dead worker.
  startToCloseTimeout: '7 days',
  heartbeatTimeout: '20 seconds',
  retry: { maximumAttempts: 5 },
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});

export interface DispatcherState {
  queue: QueuedRequest[];
  /** builder id → request ids holding one of its slots */
  running: Record<string, string[]>;
  /** grants per jobset, for fair sharing */
  usage: Record<string, number>;
  seq: number;
  /**
   * batch id → the builder it runs on, the requests it realises (its id holds its slots in `running`),
   * and the inputs its members queued ahead of, which it builds along (`inputs`).
   */
  batches?: Record<string, { builderId: string; requestIds: string[]; inputs?: string[]; extras?: boolean; extraIds?: string[] }>;
}

const emptyState = (): DispatcherState => ({ queue: [], running: {}, usage: {}, seq: 0 });

/**
 * One per task queue (ID `dispatcher-<queue>`, running on `<queue>-dispatch`): holds the queue of runnable derivation steps and the
 * builders' slots. Derivation workflows ask for a slot by signal and get a `slotGranted` signal back;
 * they release it when their step ends. No polling: every change is a signal.
 */
export async function DispatcherWorkflow(initial?: DispatcherState): Promise<void> {
  const state = initial ?? emptyState();
  const grantsAtOnce = patched(GRANTS_AT_ONCE_PATCH);
  const batchesOn = grantsAtOnce && patched(BATCHES_PATCH);
  const remoteBatchesOn = batchesOn && patched(REMOTE_BATCHES_PATCH);
  const splitBatches = remoteBatchesOn && patched(SPLIT_BATCHES_PATCH);
  const extrasOn = batchesOn && patched(EXTRAS_PATCH);
  const batches = batchesOn ? (state.batches ??= {}) : {};
  /** The running batches' activities, to stop one whose member was cancelled and to wait for before continuing as new. */
  const batchRuns = new Map<string, { scope: CancellationScope; done: Promise<void> }>();
  const ownTaskQueue = dispatcherTaskQueue(taskQueueOfDispatcher(workflowInfo().workflowId));
  const onOwnTaskQueue = workflowInfo().taskQueue === ownTaskQueue;
  const continueOnOwnTaskQueue = makeContinueAsNewFunc<typeof DispatcherWorkflow>({ taskQueue: ownTaskQueue });
  /** Ends this run with its state: a batch's activity belongs to the run, so the running ones are waited for (no new one starts meanwhile). */
  const continueAsNewWithState = async (): Promise<never> => {
    await Promise.all([...batchRuns.values()].map((r) => r.done));
    await condition(allHandlersFinished);
    if (onOwnTaskQueue || patched(OWN_TASK_QUEUE_PATCH)) return continueOnOwnTaskQueue(state);
    return continueAsNew<typeof DispatcherWorkflow>(state);
  };

  let builders: DispatchBuilder[] = await loadDispatchBuilders();
  let dirty = true;
  let refresh = false;
  const outcomes: SlotRelease[] = [];

  const removeRunning = (requestId: string, builderId?: string) => {
    for (const [id, list] of Object.entries(state.running)) {
      if (builderId !== undefined && id !== builderId) continue;
      const i = list.indexOf(requestId);
      if (i >= 0) list.splice(i, 1);
    }
  };

  /** Takes a request out of the batch realising it; the batch's id when it was in one. */
  const leaveBatch = (requestId: string): string | undefined => {
    for (const [id, b] of Object.entries(batches)) {
      const i = b.requestIds.indexOf(requestId);
      if (i < 0) continue;
      b.requestIds.splice(i, 1);
      return id;
    }
    return undefined;
  };
  /** A batch ended: every slot it held is free. */
  const endBatch = (batchId: string) => {
    const b = batches[batchId];
    delete batches[batchId];
    if (b) state.running[b.builderId] = (state.running[b.builderId] ?? []).filter((r) => r !== batchId);
  };

  // Batches a previous run (before continuing as new) left are over: it waited for them.
  for (const id of Object.keys(batches)) endBatch(id);

  setHandler(requestSlotSignal, (request) => {
    if (state.queue.some((q) => q.requestId === request.requestId)) return;
    // A member of a batch asks again when that batch interrupted it: the batch's slots stay with the batch.
    if (leaveBatch(request.requestId) === undefined) removeRunning(request.requestId);
    state.queue.push({ ...request, seq: state.seq++ });
    dirty = true;
  });
  setHandler(withdrawRequestSignal, ({ requestId, kill }) => {
    state.queue = state.queue.filter((q) => q.requestId !== requestId);
    const batchId = leaveBatch(requestId);
    if (batchId === undefined) removeRunning(requestId);
    else if (kill) batchRuns.get(batchId)?.scope.cancel();
    // A cancelled derivation that a batch realises as an extra stops that batch too.
    const asExtra = batchId === undefined && kill ? Object.entries(batches).find(([, b]) => b.extraIds?.includes(requestId)) : undefined;
    if (asExtra) batchRuns.get(asExtra[0])?.scope.cancel();
    dirty = true;
  });
  /** The evaluation of each running batch of an evaluation's waiting derivations, by batch (for the state query only; not kept across continue-as-new). */
  const evaluationOfBatch: Record<string, string> = {};
  /** Evaluations that recorded their builds, for a batch of their waiting derivations when the builder is free (not kept across continue-as-new). */
  const evaluationsToRealise: string[] = [];
  setHandler(realiseEvaluationSignal, ({ evaluationId }) => {
    if (!extrasOn || evaluationsToRealise.includes(evaluationId)) return;
    evaluationsToRealise.push(evaluationId);
    dirty = true;
  });
  setHandler(batchExtrasSignal, ({ batchId, requestIds }) => {
    const b = batches[batchId];
    if (b) b.extraIds = requestIds;
  });
  setHandler(releaseSlotSignal, (release) => {
    if (batches[release.requestId] && release.slots !== undefined) {
      for (let i = 0; i < release.slots; i++) removeRunning(release.requestId, release.builderId);
      dirty = true;
      return;
    }
    if (batches[release.requestId]) endBatch(release.requestId);
    else removeRunning(release.requestId, release.builderId);
    outcomes.push(release);
    dirty = true;
  });
  setHandler(reprioritizeSignal, ({ requestId, priority }) => {
    const q = state.queue.find((r) => r.requestId === requestId);
    if (q && priority > q.priority) {
      q.priority = priority;
      dirty = true;
    }
  });
  setHandler(buildersChangedSignal, () => {
    refresh = true;
  });
  setHandler(dispatcherStateQuery, () => ({
    queue: state.queue,
    running: state.running,
    builders: builders.map((b) => ({ id: b.id, maxJobs: b.maxJobs, running: state.running[b.id]?.length ?? 0, disabledUntil: b.disabledUntil })),
    evaluationBatches: Object.values(evaluationOfBatch),
  }));

  const grant = async (g: SlotGrant) => {
    try {
      await getExternalWorkflowHandle(g.requestId).signal(slotGrantedSignal, g);
    } catch {
      // The requester is gone: free the slot it would have held.
      if (g.builderId) removeRunning(g.requestId, g.builderId);
      dirty = true;
    }
  };

  /**
   * Whether a batch on `builderId` may take extras (`BatchExtras`): it is the only enabled builder, so no
   * other builder could take the same derivations, and no other batch with extras runs there.
   */
  const mayTakeExtras = (builderId: string): boolean => {
    const enabled = builders.filter((b) => b.enabled);
    return enabled.length === 1 && enabled[0].id === builderId && !Object.values(batches).some((b) => b.builderId === builderId && b.extras);
  };

  /** Starts a batch's activity on `builderId`, holding `slots` of its slots until it ends. */
  const startBatch = (b: { builderId: string; slots: number; members: QueuedRequest[]; requestIds: string[]; inputs: string[]; extras: BatchExtras | undefined }) => {
    const batchId = `batch-${state.seq++}`;
    batches[batchId] = { builderId: b.builderId, requestIds: [...b.requestIds], ...(b.inputs.length > 0 ? { inputs: b.inputs } : {}), ...(b.extras ? { extras: true } : {}) };
    if (b.extras && 'evaluationId' in b.extras) evaluationOfBatch[batchId] = b.extras.evaluationId;
    for (let i = 0; i < b.slots; i++) (state.running[b.builderId] ??= []).push(batchId);
    running[b.builderId] = (running[b.builderId] ?? 0) + b.slots;
    const input: RealiseBatchInput = { batchId, builderId: b.builderId, slots: b.slots, members: b.members.map((m) => ({ ...m.batch!, requestId: m.requestId })), ...(b.extras ? { extras: b.extras } : {}) };
    const scope = new CancellationScope();
    const done = scope
      .run(() => realiseBatch(input))
      .then(
        () => undefined,
        async (err) => {
          if (isCancellation(err)) return;
          // The activity gave up (its retries spent): the members still waiting hear of a builder
          // failure and ask again; members told already ignore it.
          const message = (err as Error).message ?? 'the batch failed';
          await inBatches(input.members, (m) =>
            getExternalWorkflowHandle(m.requestId)
              .signal(stepRealisedSignal, { drvPath: m.drvPath, status: 'builder_failure', outputs: {}, errorMessage: message, builderId: input.builderId, logPath: null })
              .catch(() => undefined),
          );
        },
      )
      .finally(() => {
        delete evaluationOfBatch[batchId];
        batchRuns.delete(batchId);
        endBatch(batchId);
        dirty = true;
      });
    batchRuns.set(batchId, { scope, done });
  };
  /** Slots in use per builder, this round (recounted from `state.running` at the start of each). */
  let running: Record<string, number> = {};

  for (;;) {
    const now = Date.now();
    const nextExpiry = builders
      .map((b) => b.disabledUntil)
      .filter((t): t is number => t !== null && t > now)
      .reduce<number | undefined>((min, t) => (min === undefined || t < min ? t : min), undefined);
    if (nextExpiry !== undefined) {
      await condition(() => dirty || refresh, nextExpiry - now + 50);
    } else {
      await condition(() => dirty || refresh);
    }
    dirty = false;

    if (refresh) {
      refresh = false;
      builders = await loadDispatchBuilders();
    }
    while (outcomes.length > 0) {
      const o = outcomes.shift()!;
      const b = builders.find((x) => x.id === o.builderId);
      if (!b) continue;
      if (o.builderFailed || b.consecutiveFailures > 0) {
        const health = await recordBuilderOutcome({ builderId: o.builderId, failed: o.builderFailed, message: o.failureMessage ?? null });
        b.consecutiveFailures = health.consecutiveFailures;
        b.disabledUntil = health.disabledUntil;
      }
    }
    // Started on the main task queue: move to the dispatcher's own (the queue goes along in the state).
    if (!onOwnTaskQueue && patched(OWN_TASK_QUEUE_PATCH)) await continueAsNewWithState();

    const grants: SlotGrant[] = [];
    const send = async (g: SlotGrant) => {
      if (grantsAtOnce) grants.push(g);
      else await grant(g);
    };
    for (const r of unsupportedRequests(builders, state.queue)) {
      state.queue = state.queue.filter((q) => q.requestId !== r.requestId);
      const why = builders.length === 0 ? 'no builders' : `no enabled builder supports system ${r.system}${r.requiredFeatures.length ? ` with features ${r.requiredFeatures.join(', ')}` : ''}`;
      await send({ requestId: r.requestId, builderId: null, unsupported: why });
    }

    running = {};
    for (const [id, list] of Object.entries(state.running)) running[id] = list.length;
    // A queued derivation that a running batch realises as an extra waits for that batch (never two Nix
    // processes on one derivation, its log written twice): built there, its request leaves the queue;
    // interrupted there, it asks again once that batch has ended.
    const extraOfRunning = new Set(Object.values(batches).flatMap((b) => b.extraIds ?? []));
    if (batchesOn) {
      const order = batchBuilderOrder(builders, running, remoteBatchesOn, LOCAL_BUILDER);
      for (const [turn, builder] of order.entries()) {
        const share = splitBatches ? batchShare(builder, order.slice(turn + 1), state.queue, running, state.usage, Date.now()) : undefined;
        // Inputs that a batch on another builder builds along wait for it to end (never built twice at once).
        const elsewhere = builtAlongElsewhere(builder.id, state.queue, Object.values(batches).map((b) => ({ builderId: b.builderId, inputs: b.inputs ?? [] })));
        const open = () => state.queue.filter((q) => (!share || share.has(q.requestId)) && !elsewhere.has(q.requestId) && !extraOfRunning.has(q.requestId));
        const form = () => formBatch(builder, open(), running, state.usage, Date.now());
        for (let plan = form(); plan; plan = form()) {
          const requestIds = new Set(plan.requestIds);
          const members = state.queue.filter((q) => requestIds.has(q.requestId));
          state.queue = state.queue.filter((q) => !requestIds.has(q.requestId));
          const lead = members.find((m) => m.requestId === plan.requestIds[0])!;
          // Extras: only where no other builder could take the same derivations, and one such batch at a time.
          const extras: BatchExtras | undefined = extrasOn && mayTakeExtras(plan.builderId) ? { system: lead.system, priority: lead.priority, limit: MAX_BATCH_EXTRAS } : undefined;
          // A batch with extras holds every free slot (it gives back at once what its Nix will not use).
          const slots = extras ? Math.max(plan.slots, builder.maxJobs - (running[plan.builderId] ?? 0)) : plan.slots;
          for (const m of members) state.usage[m.jobsetId] = (state.usage[m.jobsetId] ?? 0) + 1;
          startBatch({ builderId: plan.builderId, slots, members, requestIds: plan.requestIds, inputs: [...new Set(members.flatMap(aheadOf))], extras });
        }
      }
    }
    // A batch of an evaluation's waiting derivations, on the only enabled builder when it has free slots and no
    // other batch with extras (its members' requests, if any, formed batches above first).
    for (let evaluationId = evaluationsToRealise.shift(); evaluationId !== undefined; evaluationId = evaluationsToRealise.shift()) {
      const builder = batchBuilderOrder(builders, running, remoteBatchesOn, LOCAL_BUILDER).find((b) => mayTakeExtras(b.id));
      if (!builder || !isAvailable(builder, Date.now())) continue;
      const free = builder.maxJobs - (running[builder.id] ?? 0);
      if (free <= 0) continue;
      startBatch({ builderId: builder.id, slots: free, members: [], requestIds: [], inputs: [], extras: { evaluationId, limit: MAX_BATCH_EXTRAS } });
    }
    for (const a of assignSlots(builders, state.queue.filter((q) => !extraOfRunning.has(q.requestId)), running, state.usage, Date.now())) {
      const request = state.queue.find((q) => q.requestId === a.requestId)!;
      state.queue = state.queue.filter((q) => q.requestId !== a.requestId);
      (state.running[a.builderId] ??= []).push(a.requestId);
      state.usage[request.jobsetId] = (state.usage[request.jobsetId] ?? 0) + 1;
      await send({ requestId: a.requestId, builderId: a.builderId });
    }
    await inBatches(grants, grant);

    if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > 4000) await continueAsNewWithState();
  }
}
