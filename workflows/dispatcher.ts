import {
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  patched,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
  allHandlersFinished,
} from '@temporalio/workflow';
import type { DispatchActivities } from '../activities/dispatch';
import { assignSlots, unsupportedRequests, type DispatchBuilder, type QueuedRequest } from './dispatch-policy';
import {
  buildersChangedSignal,
  dispatcherStateQuery,
  releaseSlotSignal,
  reprioritizeSignal,
  requestSlotSignal,
  slotGrantedSignal,
  withdrawRequestSignal,
  type SlotGrant,
  type SlotRelease,
} from './shared';
import { inBatches } from './in-batches';

/**
 * patched() ID (issue 6): the slots a round assigns are granted all at once (one workflow task),
 * not one signal and one workflow task after another.
 */
const GRANTS_AT_ONCE_PATCH = 'dispatcher-grants-at-once';

const { loadDispatchBuilders, recordBuilderOutcome } = proxyLocalActivities<DispatchActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5 },
});

export interface DispatcherState {
  queue: QueuedRequest[];
  /** builder id → request ids holding one of its slots */
  running: Record<string, string[]>;
  /** grants per jobset, for fair sharing */
  usage: Record<string, number>;
  seq: number;
}

const emptyState = (): DispatcherState => ({ queue: [], running: {}, usage: {}, seq: 0 });

/**
 * One per task queue (ID `dispatcher-<queue>`): holds the queue of runnable derivation steps and the
 * builders' slots. Derivation workflows ask for a slot by signal and get a `slotGranted` signal back;
 * they release it when their step ends. No polling: every change is a signal.
 */
export async function DispatcherWorkflow(initial?: DispatcherState): Promise<void> {
  const state = initial ?? emptyState();
  const grantsAtOnce = patched(GRANTS_AT_ONCE_PATCH);
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

  setHandler(requestSlotSignal, (request) => {
    if (state.queue.some((q) => q.requestId === request.requestId)) return;
    removeRunning(request.requestId);
    state.queue.push({ ...request, seq: state.seq++ });
    dirty = true;
  });
  setHandler(withdrawRequestSignal, ({ requestId }) => {
    state.queue = state.queue.filter((q) => q.requestId !== requestId);
    removeRunning(requestId);
    dirty = true;
  });
  setHandler(releaseSlotSignal, (release) => {
    removeRunning(release.requestId, release.builderId);
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

    const running: Record<string, number> = {};
    for (const [id, list] of Object.entries(state.running)) running[id] = list.length;
    for (const a of assignSlots(builders, state.queue, running, state.usage, Date.now())) {
      const request = state.queue.find((q) => q.requestId === a.requestId)!;
      state.queue = state.queue.filter((q) => q.requestId !== a.requestId);
      (state.running[a.builderId] ??= []).push(a.requestId);
      state.usage[request.jobsetId] = (state.usage[request.jobsetId] ?? 0) + 1;
      await send({ requestId: a.requestId, builderId: a.builderId });
    }
    await inBatches(grants, grant);

    if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > 4000) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof DispatcherWorkflow>(state);
    }
  }
}
