import {
  ActivityCancellationType,
  ActivityFailure,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
  allHandlersFinished,
} from '@temporalio/workflow';
import type { DerivationActivities, DerivationPlan, DerivationState } from '../activities/derivation';
import type { BuildActivities } from '../activities/build';
import {
  addWaiterSignal,
  derivationFinishedSignal,
  raisePrioritySignal,
  removeWaiterSignal,
  slotGrantedSignal,
  stepProgressSignal,
  stepRealisedSignal,
  type DerivationInput,
  type DerivationResult,
  type SlotGrant,
  type StepRealisation,
} from './shared';
import { inBatches } from './in-batches';

const { checkDerivation, queueDerivation, recordCachedFailure, requestBuilderSlot, releaseBuilderSlot, markStepPhase, planDerivation } = proxyLocalActivities<DerivationActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 10 },
});
const { attachToDerivations } = proxyLocalActivities<Pick<BuildActivities, 'attachToDerivations'>>({
  startToCloseTimeout: '5 minutes',
  retry: { maximumAttempts: 10 },
});

/**
 * patched() ID (issue 6): the derivation checks itself, marks its steps queued and asks for a slot in
 * one local activity (`queueDerivation`) instead of three, tells its waiters of the result all at
 * once (one workflow task, not one per waiter), and sends them no `stepProgress` signal (the step
 * rows in PostgreSQL carry each step's phase and builder). Histories recorded before run the old path.
 */
const ONE_QUEUE_ACTIVITY_AND_NOTIFY_AT_ONCE_PATCH = 'derivation-queues-in-one-activity-and-notifies-at-once';

/**
 * patched() ID (issue 6): a derivation started with `plansInputs` plans its own input derivations
 * (`planDerivation`), attaches to them as their waiter and waits for them before it queues itself, so
 * a build waits on its top derivation only: one `derivationFinished` per edge of the derivation graph,
 * not one per build and step.
 */
const WAITS_ON_INPUTS_PATCH = 'derivation-waits-on-its-inputs';

/**
 * patched() ID (issue 6): the realiseStep activity releases its builder slot itself when the Nix
 * process ends, so the dispatcher can grant it again without waiting for this workflow's next task.
 */
const STEP_RELEASES_SLOT_PATCH = 'realise-step-releases-its-slot';

/**
 * patched() ID (issue 6): on the worker's own Nix (no remote builder configured: `plan.runAhead`), a
 * derivation that plans its inputs queues for a batch at once, without waiting for its inputs (Nix
 * realises a batch in dependency order and builds missing inputs along), and learns its result from
 * the batch's `stepRealised` signal instead of running a `realiseStep` activity.
 */
const BATCH_PATCH = 'derivation-realised-in-local-batches';

/**
 * patched() ID (issue 6): a batch member that Nix left unbuilt because an input failed there, while that
 * input's own workflow has since built it (on another builder: run-ahead over SSH), queues again
 * instead of ending `dependency_failed`.
 */
const REQUEUE_AFTER_INPUTS_SUCCEEDED_PATCH = 'derivation-requeues-when-its-inputs-succeeded-after-a-batch';

/**
 * patched() ID (issue 6): a derivation queued for a batch attaches to its inputs as a waiter that hears of
 * their failures only (`failuresOnly`): it learns its own result from the batch, so each input's success
 * no longer costs it a signal and a workflow task. When the batch leaves it unbuilt for a failed input,
 * it attaches again to hear every result.
 */
const INPUT_FAILURES_ONLY_PATCH = 'batch-member-hears-only-its-inputs-failures';

/** Builder failures (connection refused, host-key mismatch, builder killed) are retried elsewhere this many times. */
const MAX_BUILDER_ATTEMPTS = 4;

/**
 * One per derivation being realised (ID `drv-<queue>-<hash>`): every build that needs the derivation
 * registers as a waiter, so the derivation is built once and its result is shared. A cached failure
 * is shared too. When the last waiter leaves (cancel), the running step is cancelled and the remote
 * process killed.
 */
export async function DerivationWorkflow(input: DerivationInput): Promise<DerivationResult> {
  const waiters = new Map<string, number>();
  /** Waiters that hear of a failure only (`failuresOnly`), and those of them passed over on a success. */
  const hearFailuresOnly = new Set<string>();
  const passedOver = new Set<string>();
  const notified = new Set<string>();
  let priority = input.priority;
  let grant: SlotGrant | undefined;
  let everHadWaiter = false;

  setHandler(addWaiterSignal, (w) => {
    waiters.set(w.workflowId, w.priority);
    if (w.failuresOnly) hearFailuresOnly.add(w.workflowId);
    else {
      hearFailuresOnly.delete(w.workflowId);
      // Now it asks for every result: tell it a success it was passed over on.
      if (passedOver.delete(w.workflowId)) notified.delete(w.workflowId);
    }
    everHadWaiter = true;
    if (w.priority > priority) priority = w.priority;
  });
  setHandler(removeWaiterSignal, ({ workflowId }) => {
    waiters.delete(workflowId);
  });
  setHandler(raisePrioritySignal, ({ priority: p }) => {
    if (p > priority) priority = p;
  });
  setHandler(slotGrantedSignal, (g) => {
    grant = g;
  });
  // Results of this derivation's inputs, when it waits on them itself.
  const inputResults = new Map<string, DerivationResult>();
  setHandler(derivationFinishedSignal, (r) => {
    inputResults.set(r.drvPath, r);
  });
  // This derivation's result from the batch realising it.
  let realised: StepRealisation | undefined;
  let batched = false;
  setHandler(stepRealisedSignal, (r) => {
    if (r.drvPath === input.drvPath) realised = r;
  });

  const self = workflowInfo().workflowId;
  const atOnce = patched(ONE_QUEUE_ACTIVITY_AND_NOTIFY_AT_ONCE_PATCH);
  const stepReleasesSlot = patched(STEP_RELEASES_SLOT_PATCH);
  const base = { drvPath: input.drvPath, outputs: {}, errorMessage: null, builderId: null, logPath: null };
  const unwanted: DerivationResult = { ...base, status: 'cancelled', errorMessage: 'no build wants this derivation any more' };
  /** The result a check settles (outputs valid, or a cached failure), or undefined when the derivation needs building. */
  const settledBy = (state: DerivationState | DerivationPlan): DerivationResult | undefined => {
    if (state.kind === 'valid') return { ...base, status: 'succeeded', outputs: state.outputs };
    if (state.kind === 'cached_failure') return state.failedAfterQueued ? { ...base, ...state.failedAfterQueued } : { ...base, status: 'cached_failure', errorMessage: state.errorMessage };
    if (state.kind === 'missing_derivation') return { ...base, status: 'aborted', errorMessage: state.errorMessage };
    return undefined;
  };
  const result = await realise();
  // A build that attaches after the failure was decided did not wait for a build: for it, the failure
  // is a cached one (as it would be had it come a moment later and found the cached_failures row).
  const decidedFor = new Set(waiters.keys());
  const cachedFailure: DerivationResult | undefined = ['failed', 'timeout', 'log_limit_exceeded'].includes(result.status)
    ? { ...result, status: 'cached_failure', errorMessage: `cached failure (${result.status})${result.errorMessage ? `: ${result.errorMessage}` : ''}` }
    : undefined;

  // Tell every waiter, including ones that arrive while we finish: a build that attaches in the
  // last moments must not be left waiting on a closed workflow.
  const unnotified = () => [...waiters.keys()].some((w) => !notified.has(w));
  for (;;) {
    // A derivation realised in a batch does not linger: a build that attaches after it closed starts a
    // new run, which finds the outputs valid (or the cached failure) and answers at once.
    if (!unnotified() && (batched || !(await condition(unnotified, '2 seconds')))) break;
    let pending = [...waiters.keys()].filter((w) => !notified.has(w));
    for (const w of pending) notified.add(w);
    // Only waiters that asked (failuresOnly, sent by current code only) go untold of a success.
    if (result.status === 'succeeded') {
      for (const w of pending) if (hearFailuresOnly.has(w)) passedOver.add(w);
      pending = pending.filter((w) => !hearFailuresOnly.has(w));
    }
    const tell = (w: string) => getExternalWorkflowHandle(w).signal(derivationFinishedSignal, decidedFor.has(w) || !cachedFailure ? result : cachedFailure);
    if (atOnce) {
      // The signals go out together (in batches); a waiter that is gone is no concern.
      await inBatches(pending, (w) => tell(w).catch(() => undefined));
      continue;
    }
    for (const w of pending) {
      try {
        await tell(w);
      } catch {
        /* the waiter is gone */
      }
    }
  }
  await condition(allHandlersFinished);
  return result;

  async function realise(): Promise<DerivationResult> {
    const slotRequest = (avoidBuilders: string[]) => ({ requestId: self, drvPath: input.drvPath, system: input.system, requiredFeatures: input.requiredFeatures, priority, jobsetId: input.jobsetId, shares: input.shares, avoidBuilders });
    if (!atOnce) {
      const settled = settledBy(await checkDerivation({ drvPath: input.drvPath, logBuildId: input.logBuildId }));
      if (settled) return settled;
    }
    // Planned here (and so checked): the queueing below need not check again.
    let planned = false;
    if (input.plansInputs && patched(WAITS_ON_INPUTS_PATCH)) {
      const plan = await planDerivation({ ...input, priority });
      const settled = settledBy(plan);
      if (settled) return settled;
      if (plan.kind === 'needs_build' && plan.runAhead && patched(BATCH_PATCH)) {
        const inBatch = await realiseInBatches(plan.inputs, plan.jobNames, plan.workflowIds, plan.extraOfRunningBatch === true);
        if (inBatch) return inBatch;
        // Else a slot on another builder was granted: the inputs have succeeded, build on the per-step path.
      } else if (plan.kind === 'needs_build' && plan.inputs.length > 0) {
        const failed = await waitOnInputs(plan.inputs, plan.jobNames, plan.workflowIds);
        if (failed) return failed;
      }
      planned = true;
    }

    // Wait (briefly) for the first waiter: a derivation nobody wants is not built.
    await condition(() => everHadWaiter, '1 minute');
    const avoid: string[] = [];
    for (let attempt = 1; ; attempt++) {
      if (waiters.size === 0) return unwanted;
      grant = undefined;
      let lastPriority = priority;
      if (atOnce) {
        // Checked on the first attempt only: a retry after a builder failure still needs its build.
        const settled = settledBy(await queueDerivation({ check: attempt === 1 && !planned, logBuildId: input.logBuildId, request: slotRequest(avoid) }));
        if (settled) return settled;
      } else {
        await requestBuilderSlot(slotRequest(avoid));
        await markStepPhase({ drvPath: input.drvPath, phase: 'queued', builderId: null });
      }
      for (;;) {
        await condition(() => grant !== undefined || waiters.size === 0 || priority > lastPriority);
        if (grant !== undefined || waiters.size === 0) break;
        lastPriority = priority;
        await requestBuilderSlot({ ...slotRequest(avoid), reprioritizeOnly: true });
      }
      const granted = grant as SlotGrant | undefined;
      if (!granted) {
        await releaseBuilderSlot({ requestId: self, builderId: null, builderFailed: false });
        return { ...base, status: 'cancelled', errorMessage: 'cancelled while queued' };
      }
      if (!granted.builderId) return { ...base, status: 'unsupported_system', errorMessage: granted.unsupported ?? 'unsupported system' };
      const builderId = granted.builderId;
      if (!atOnce) {
        for (const w of waiters.keys()) {
          getExternalWorkflowHandle(w).signal(stepProgressSignal, { drvPath: input.drvPath, phase: 'building', builderId }).catch(() => {});
        }
      }

      const { realiseStep } = proxyActivities<DerivationActivities>({
        startToCloseTimeout: `${input.timeoutSeconds + 600} seconds`,
        heartbeatTimeout: '20 seconds',
        retry: { maximumAttempts: 2, nonRetryableErrorTypes: ['BuilderFailure'] },
        cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      });
      let outcome: Awaited<ReturnType<DerivationActivities['realiseStep']>> | undefined;
      const scope = new CancellationScope();
      const watcher = condition(() => waiters.size === 0).then(() => scope.cancel());
      void watcher;
      try {
        outcome = await scope.run(() =>
          realiseStep({
            drvPath: input.drvPath,
            builderId,
            logBuildId: input.logBuildId,
            timeoutSeconds: input.timeoutSeconds,
            maxSilentSeconds: input.maxSilentSeconds,
            ...(stepReleasesSlot ? { slotRequestId: self } : {}),
          }),
        );
      } catch (err) {
        if (isCancellation(err)) {
          await CancellationScope.nonCancellable(() => releaseBuilderSlot({ requestId: self, builderId, builderFailed: false }));
          return { ...base, status: 'cancelled', builderId, errorMessage: 'cancelled while building' };
        }
        const message = err instanceof ActivityFailure ? err.cause?.message ?? err.message : (err as Error).message;
        outcome = { status: 'builder_failure', exitCode: null, errorMessage: message ?? 'activity failed', outputs: {}, logPath: null };
      }
      if (outcome.status === 'builder_failure') {
        await releaseBuilderSlot({ requestId: self, builderId, builderFailed: true, failureMessage: outcome.errorMessage ?? undefined });
        if (attempt >= MAX_BUILDER_ATTEMPTS) return { ...base, status: 'aborted', builderId, errorMessage: `builder failures: ${outcome.errorMessage}` };
        avoid.push(builderId);
        continue;
      }
      if (!outcome.slotReleased) await releaseBuilderSlot({ requestId: self, builderId, builderFailed: false });
      if (outcome.status === 'succeeded') {
        return { drvPath: input.drvPath, status: 'succeeded', outputs: outcome.outputs, errorMessage: null, builderId, logPath: outcome.logPath };
      }
      const status = outcome.status === 'cancelled' ? 'cancelled' : outcome.status;
      if (status === 'failed' || status === 'timeout' || status === 'log_limit_exceeded') {
        await recordCachedFailure({ drvPath: input.drvPath, status, errorMessage: outcome.errorMessage });
      }
      return { drvPath: input.drvPath, status, outputs: {}, errorMessage: outcome.errorMessage, builderId, logPath: outcome.logPath };
    }
  }

  /**
   * Attaches to the input derivations as their waiter and waits for their results: undefined when all
   * succeeded, or this derivation's result when one did not (or when no one wants this one any more).
   */
  async function waitOnInputs(inputs: DerivationInput[], jobNames: Record<string, string>, workflowIds: Record<string, string>): Promise<DerivationResult | undefined> {
    const pending = () => inputs.filter((i) => !inputResults.has(i.drvPath));
    const attachTo = (list: DerivationInput[]) => attachToDerivations({ derivations: list.map((i) => ({ ...i, priority })), waiter: { workflowId: self, priority } });
    const detach = () => inBatches(pending(), (i) => getExternalWorkflowHandle(workflowIds[i.drvPath]).signal(removeWaiterSignal, { workflowId: self }).catch(() => undefined));
    await attachTo(inputs);
    let sentPriority = priority;
    for (;;) {
      const failure = inputs.map((i) => inputResults.get(i.drvPath)).find((r) => r !== undefined && r.status !== 'succeeded');
      if (failure) {
        await detach();
        return dependencyResult(failure, jobNames[failure.drvPath]);
      }
      if (pending().length === 0) return undefined;
      if (everHadWaiter && waiters.size === 0) {
        await detach();
        return unwanted;
      }
      if (priority > sentPriority) {
        sentPriority = priority;
        const p = priority;
        await inBatches(pending(), (i) => getExternalWorkflowHandle(workflowIds[i.drvPath]).signal(raisePrioritySignal, { priority: p }).catch(() => undefined));
        continue;
      }
      const known = inputResults.size;
      // Every few minutes without news, attach again (idempotent): an input workflow that closed meanwhile is started anew and answers.
      const woke = await condition(() => inputResults.size > known || (everHadWaiter && waiters.size === 0) || priority > sentPriority, '3 minutes');
      if (!woke) await attachTo(pending());
    }
  }

  function dependencyResult(r: DerivationResult, jobName: string | undefined): DerivationResult {
    const what = jobName ? `dependency ${jobName} (${r.drvPath})` : `dependency ${r.drvPath}`;
    // A failure further down keeps the message that names the derivation that failed.
    const nested = r.errorMessage !== null && r.errorMessage.startsWith('dependency ');
    if (r.status === 'unsupported_system') return { ...base, status: 'unsupported_system', errorMessage: nested ? r.errorMessage : `${what}: ${r.errorMessage ?? 'unsupported system'}` };
    if (r.status === 'cancelled') return { ...base, status: 'cancelled', errorMessage: nested ? r.errorMessage : `${what} was cancelled` };
    if (r.status === 'dependency_failed') return { ...base, status: 'dependency_failed', errorMessage: r.errorMessage };
    return { ...base, status: 'dependency_failed', errorMessage: `${what} ${r.status.replace(/_/g, ' ')}${r.errorMessage ? `: ${r.errorMessage}` : ''}` };
  }


  /**
   * The batch path (issue 6): attaches to the inputs, queues at once for a batch of the worker's own
   * Nix, and takes its result from the batch (`stepRealised`). An input that fails first makes it
   * `dependency_failed`, as on the per-step path; a batch stopped for another member, or a builder
   * failure, queues it again. Undefined when the dispatcher granted a slot of another builder instead
   * (remote builders were added meanwhile): the inputs have succeeded then, and the per-step path builds.
   */
  async function realiseInBatches(inputs: DerivationInput[], jobNames: Record<string, string>, workflowIds: Record<string, string>, extraOfRunningBatch: boolean): Promise<DerivationResult | undefined> {
    const pending = () => inputs.filter((i) => !inputResults.has(i.drvPath));
    const failedInput = () => inputs.map((i) => inputResults.get(i.drvPath)).find((r) => r !== undefined && r.status !== 'succeeded');
    const detach = () => inBatches(pending(), (i) => getExternalWorkflowHandle(workflowIds[i.drvPath]).signal(removeWaiterSignal, { workflowId: self }).catch(() => undefined));
    const inputFailed = async (failure: DerivationResult) => {
      await detach();
      return dependencyResult(failure, jobNames[failure.drvPath]);
    };
    batched = true;
    // A running batch realises it as an extra (issue 6): it waits for that batch's word before it attaches to
    // its inputs and queues (no patched() gate: only plans recorded by this code say so). A cancel in the
    // meantime stops that batch (the dispatcher knows its extras); no word within a minute, or a word other
    // than its result (the batch stopped or lost its builder first), and it goes the usual way below.
    if (extraOfRunningBatch) {
      if (!everHadWaiter) await condition(() => everHadWaiter, '1 minute');
      await condition(() => realised !== undefined || waiters.size === 0, '1 minute');
      const r = realised as StepRealisation | undefined;
      if (r === undefined && waiters.size === 0) {
        await releaseBuilderSlot({ requestId: self, builderId: null, builderFailed: false, kill: true });
        return unwanted;
      }
      if (r?.status === 'succeeded') return { ...base, status: 'succeeded', outputs: r.outputs, builderId: r.builderId, logPath: r.logPath };
      // The batch cached the failure already (a derivation built along).
      if (r?.status === 'failed' || r?.status === 'timeout' || r?.status === 'log_limit_exceeded') return { ...base, status: r.status, errorMessage: r.errorMessage, builderId: r.builderId, logPath: r.logPath };
    }
    const failuresOnly = inputs.length > 0 && patched(INPUT_FAILURES_ONLY_PATCH);
    // With failuresOnly, an input's success is not heard: `pending()` then also holds inputs that have
    // succeeded (a retried member names them to the dispatcher again, which finds them built).
    if (inputs.length > 0) await attachToDerivations({ derivations: inputs.map((i) => ({ ...i, priority })), waiter: { workflowId: self, priority, ...(failuresOnly ? { failuresOnly: true } : {}) } });
    /**
     * Before waiting for its inputs to succeed, a member attached to hear failures only attaches again to
     * hear every result (an input that has closed starts a new run, which answers at once; a running one
     * that already passed over it tells it again).
     */
    let hearsEveryResult = !failuresOnly;
    const hearEveryResult = async () => {
      if (hearsEveryResult) return;
      hearsEveryResult = true;
      if (pending().length > 0) await attachToDerivations({ derivations: pending().map((i) => ({ ...i, priority })), waiter: { workflowId: self, priority } });
    };
    if (!everHadWaiter) await condition(() => everHadWaiter, '1 minute');
    const batch = { drvPath: input.drvPath, logBuildId: input.logBuildId, timeoutSeconds: input.timeoutSeconds, maxSilentSeconds: input.maxSilentSeconds };
    for (let builderFailures = 0; ; ) {
      if (waiters.size === 0) {
        await detach();
        return unwanted;
      }
      realised = undefined;
      grant = undefined;
      let sentPriority = priority;
      await queueDerivation({ check: false, request: { requestId: self, drvPath: input.drvPath, system: input.system, requiredFeatures: input.requiredFeatures, priority, jobsetId: input.jobsetId, shares: input.shares, avoidBuilders: [], batch: { ...batch, pendingInputs: pending().map((i) => i.drvPath) } } });
      for (;;) {
        await condition(() => realised !== undefined || grant !== undefined || waiters.size === 0 || failedInput() !== undefined || priority > sentPriority);
        if (realised !== undefined || grant !== undefined || waiters.size === 0 || failedInput() !== undefined) break;
        sentPriority = priority;
        const p = priority;
        await requestBuilderSlot({ requestId: self, drvPath: input.drvPath, system: input.system, requiredFeatures: input.requiredFeatures, priority: p, jobsetId: input.jobsetId, shares: input.shares, avoidBuilders: [], reprioritizeOnly: true });
        await inBatches(pending(), (i) => getExternalWorkflowHandle(workflowIds[i.drvPath]).signal(raisePrioritySignal, { priority: p }).catch(() => undefined));
      }
      const r = realised as StepRealisation | undefined;
      if (r === undefined) {
        const failure = failedInput();
        const granted = grant as SlotGrant | undefined;
        if (failure || waiters.size === 0) {
          // Out of the queue; a cancel also stops the batch realising it, if one does.
          await releaseBuilderSlot({ requestId: self, builderId: null, builderFailed: false, kill: !failure });
          if (failure) return inputFailed(failure);
          await detach();
          return { ...base, status: 'cancelled', errorMessage: 'cancelled while queued or building' };
        }
        if (granted && !granted.builderId) {
          await detach();
          return { ...base, status: 'unsupported_system', errorMessage: granted.unsupported ?? 'unsupported system' };
        }
        // A slot of a builder that does not realise batches: give it back until the inputs have succeeded.
        await releaseBuilderSlot({ requestId: self, builderId: granted!.builderId, builderFailed: false });
        await hearEveryResult();
        await condition(() => pending().length === 0 || failedInput() !== undefined || waiters.size === 0);
        const late = failedInput();
        if (late) return inputFailed(late);
        if (waiters.size === 0) {
          await detach();
          return unwanted;
        }
        return undefined;
      }
      // Built along by another batch while its own request waits: take that out of the queue.
      if (r.alongInput) await releaseBuilderSlot({ requestId: self, builderId: null, builderFailed: false });
      switch (r.status) {
        case 'succeeded':
          // Its inputs have succeeded too (their own results may still be on their way): nothing to detach.
          return { ...base, status: 'succeeded', outputs: r.outputs, builderId: r.builderId, logPath: r.logPath };
        case 'failed':
        case 'timeout':
        case 'log_limit_exceeded':
          await recordCachedFailure({ drvPath: input.drvPath, status: r.status, errorMessage: r.errorMessage });
          return { ...base, status: r.status, errorMessage: r.errorMessage, builderId: r.builderId, logPath: r.logPath };
        case 'dependency_failed': {
          // Nix did not build it: the input that failed says which (its own workflow reports it).
          await hearEveryResult();
          await condition(() => failedInput() !== undefined || pending().length === 0, '10 minutes');
          const failure = failedInput();
          if (failure) return inputFailed(failure);
          // Every input has succeeded since (the batch's Nix could not build one that its own workflow built elsewhere): queue again.
          if (pending().length === 0 && ++builderFailures < MAX_BUILDER_ATTEMPTS && patched(REQUEUE_AFTER_INPUTS_SUCCEEDED_PATCH)) continue;
          return { ...base, status: 'dependency_failed', errorMessage: r.errorMessage, builderId: r.builderId, logPath: r.logPath };
        }
        case 'builder_failure':
          if (++builderFailures >= MAX_BUILDER_ATTEMPTS) return { ...base, status: 'aborted', builderId: r.builderId, errorMessage: `builder failures: ${r.errorMessage}` };
          continue;
        case 'interrupted':
          continue;
      }
    }
  }
}
