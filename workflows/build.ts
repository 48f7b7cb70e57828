import {
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  allHandlersFinished,
  patched,
} from '@temporalio/workflow';
import type { BuildActivities, PlannedStep } from '../activities/build';
import { RingmasterStatus } from '../lib/search-attributes';
import {
  buildStatusQuery,
  bumpBuildUpdate,
  derivationFinishedSignal,
  raisePrioritySignal,
  removeWaiterSignal,
  stepProgressSignal,
  type BuildInput,
  type BuildStatusView,
  type DerivationInput,
  type DerivationResult,
} from './shared';
import type { BuildStatus, StepPhase } from '../lib/statuses';
import { decideBuildOutcome } from './build-outcome';

/** patched() ID: a build cancelled before its plan records the cancel (older histories did not). */
const CANCELLED_BEFORE_PLAN_PATCH = 'build-cancelled-before-plan-is-recorded';

/**
 * patched() ID (issue 6): the build attaches to all its newly ready steps in one local activity
 * (`attachToDerivations`, whose signal-with-starts run concurrently) instead of one activity each.
 */
const ATTACH_IN_ONE_ACTIVITY_PATCH = 'build-attaches-ready-steps-in-one-activity';

/**
 * patched() ID (issue 6): a build attaches to its top derivation only, which plans and waits on its own
 * inputs (`plansInputs`); the build wakes once, for the top's result, instead of once per step.
 */
const WAIT_ON_TOP_ONLY_PATCH = 'build-waits-on-its-top-derivation-only';

const acts = proxyLocalActivities<BuildActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { maximumAttempts: 10 },
});

/**
 * One per build (ID `build-<id>`). It waits for the derivations it needs (its dependencies first,
 * each realised once by a shared DerivationWorkflow), then its own, and records the result.
 * Cancel is a workflow cancellation; bump is an update; restart is a new run under the same ID.
 */
export async function BuildWorkflow(input: BuildInput): Promise<{ status: BuildStatus }> {
  const self = workflowInfo().workflowId;
  const results = new Map<string, DerivationResult>();
  const attached = new Set<string>();
  const progress = new Map<string, { phase: StepPhase; builderId: string | null }>();
  let view: BuildStatusView = { buildId: input.buildId, status: 'pending', phase: 'starting', builderId: null, waitingFor: null, priority: 0, steps: [] };
  let steps: PlannedStep[] = [];

  setHandler(buildStatusQuery, () => ({
    ...view,
    steps: steps.map((s) => {
      const r = results.get(s.drvPath);
      const p = progress.get(s.drvPath);
      return {
        drvPath: s.drvPath,
        status: r ? r.status : attached.has(s.drvPath) ? 'running' : 'pending',
        // Derivation workflows of the current code send no progress: the step rows in PostgreSQL
        // (GET /builds/{id}/steps) carry the phase and builder of a step handed to one.
        phase: r ? null : p?.phase ?? null,
        builderId: r?.builderId ?? p?.builderId ?? null,
      };
    }),
  }));
  setHandler(derivationFinishedSignal, (r) => {
    results.set(r.drvPath, r);
  });
  setHandler(stepProgressSignal, (p) => {
    progress.set(p.drvPath, { phase: p.phase, builderId: p.builderId });
    if (steps.find((s) => s.drvPath === p.drvPath)?.isTop) {
      view.builderId = p.builderId;
      view.phase = p.phase;
    }
  });
  setHandler(
    bumpBuildUpdate,
    async ({ priority }) => {
      if (priority > view.priority) {
        view.priority = priority;
        await acts.setBuildPriority({ buildId: input.buildId, priority });
        for (const drv of attached) {
          if (results.has(drv)) continue;
          await getExternalWorkflowHandle(derivationIdOf(drv)).signal(raisePrioritySignal, { priority }).catch(() => undefined);
        }
      }
      return { priority: view.priority };
    },
    { validator: ({ priority }) => { if (!Number.isInteger(priority)) throw new Error('priority must be an integer'); } },
  );

  const setStatus = (status: BuildStatus) => {
    view.status = status;
    upsertSearchAttributes([{ key: RingmasterStatus, value: status }]);
  };

  // Finished before its workflow started (issue 6: found built at its evaluation, or realised by a batch while
  // held back): its result is recorded and its status search attribute was set at the start. Only starts by
  // this code carry `recorded`, so histories recorded before replay the path below.
  if (input.recorded && !input.restart) {
    view = { ...view, status: input.recorded, phase: 'finished' };
    return { status: input.recorded };
  }

  let plan: Awaited<ReturnType<BuildActivities['startBuild']>>;
  try {
    plan = await acts.startBuild({ buildId: input.buildId, restart: input.restart ?? false });
  } catch (err) {
    // A cancel that arrives before the build has its plan (on a busy worker, before its first task
    // ran) used to end the workflow with the row still pending, for ever. Now it records the cancel.
    if (!isCancellation(err) || !patched(CANCELLED_BEFORE_PLAN_PATCH)) throw err;
    view.phase = 'finished';
    await CancellationScope.nonCancellable(() => acts.finishBuild({ buildId: input.buildId, status: 'cancelled', errorMessage: 'cancelled', top: null }));
    setStatus('cancelled');
    return { status: 'cancelled' };
  }
  view.priority = plan.priority;
  if (plan.kind === 'finished') {
    setStatus(plan.status);
    view.phase = 'finished';
    return { status: plan.status };
  }
  steps = plan.steps;
  const attachAtOnce = patched(ATTACH_IN_ONE_ACTIVITY_PATCH);
  const topOnly = plan.topPlansInputs === true && patched(WAIT_ON_TOP_ONLY_PATCH);
  setStatus('running');

  let outcome: { status: BuildStatus; errorMessage: string | null; top: DerivationResult | null };
  const topBuilt = plan.topBuilt;
  try {
    // Its derivation is built already (issue 6): it succeeds in this task, without the derivation's workflow.
    // No patched() gate: only plans recorded by this code carry topBuilt.
    outcome = topBuilt
      ? { status: 'succeeded', errorMessage: null, top: { drvPath: steps[0].drvPath, status: 'succeeded', outputs: topBuilt, errorMessage: null, builderId: null, logPath: null } }
      : await runSteps();
  } catch (err) {
    if (!isCancellation(err)) throw err;
    outcome = await CancellationScope.nonCancellable(async () => {
      await detachAll();
      return { status: 'cancelled' as BuildStatus, errorMessage: 'cancelled', top: null };
    });
  }

  view.phase = 'finished';
  view.waitingFor = null;
  const recorded = await CancellationScope.nonCancellable(() =>
    acts.finishBuild({ buildId: input.buildId, status: outcome.status, errorMessage: outcome.errorMessage, top: outcome.top }),
  );
  // What was recorded: a cached failure decided after the build was created is its own failure (older
  // histories recorded no answer).
  const status = recorded?.status ?? outcome.status;
  setStatus(status);
  await condition(allHandlersFinished);
  return { status };

  async function detachAll(): Promise<void> {
    for (const drv of attached) {
      if (results.has(drv)) continue;
      try {
        await getExternalWorkflowHandle(derivationIdOf(drv)).signal(removeWaiterSignal, { workflowId: self });
      } catch {
        /* already closed */
      }
    }
  }

  function derivationIdOf(drv: string): string {
    return plan.kind === 'plan' ? plan.derivationWorkflowIds[drv] : drv;
  }

  function derivationInputOf(s: PlannedStep): DerivationInput {
    return {
      drvPath: s.drvPath,
      priority: view.priority,
      system: s.system,
      requiredFeatures: s.requiredFeatures,
      jobsetId: plan.kind === 'plan' ? plan.jobsetId : '',
      shares: plan.kind === 'plan' ? plan.shares : 100,
      logBuildId: s.logBuildId,
      timeoutSeconds: plan.kind === 'plan' ? plan.timeoutSeconds : 36000,
      maxSilentSeconds: plan.kind === 'plan' ? plan.maxSilentSeconds : 7200,
      ...(topOnly ? { plansInputs: true } : {}),
    };
  }

  /** Registers the build as a waiter of each of `ready`'s derivations, starting their workflows if needed. */
  async function attach(ready: PlannedStep[]): Promise<void> {
    if (ready.length === 0) return;
    if (attachAtOnce) {
      await acts.attachToDerivations({ derivations: ready.map(derivationInputOf), waiter: { workflowId: self, priority: view.priority } });
      return;
    }
    for (const s of ready) await acts.attachToDerivation({ ...derivationInputOf(s), waiterWorkflowId: self });
  }

  async function runSteps(): Promise<{ status: BuildStatus; errorMessage: string | null; top: DerivationResult | null }> {
    if (topOnly) return runTopStep();
    for (;;) {
      // Counted before attaching: a result may arrive while an attach is in flight.
      const known = results.size;
      const decided = decideBuildOutcome(steps, results);
      if (decided) {
        await detachAll();
        return decided;
      }
      const ready = steps.filter((s) => !attached.has(s.drvPath) && s.inputs.every((i) => results.get(i)?.status === 'succeeded'));
      for (const s of ready) attached.add(s.drvPath);
      await attach(ready);
      const top = steps.find((s) => s.isTop);
      view.waitingFor = top && attached.has(top.drvPath) ? 'builder slot or build' : 'dependencies';
      view.phase = 'waiting';
      // Waits for the next result. Every few minutes without one, the build attaches again to what it
      // waits on (idempotent): a derivation workflow that closed meanwhile is started anew and answers.
      while (!(await condition(() => results.size > known, '3 minutes'))) {
        await attach(steps.filter((s) => attached.has(s.drvPath) && !results.has(s.drvPath)));
      }
    }
  }

  /** The top derivation realises the whole plan (its inputs first, each by its own derivation workflow): the build waits on it alone. */
  async function runTopStep(): Promise<{ status: BuildStatus; errorMessage: string | null; top: DerivationResult | null }> {
    const top = steps.find((s) => s.isTop)!;
    attached.add(top.drvPath);
    await attach([top]);
    view.waitingFor = 'builder slot or build';
    view.phase = 'waiting';
    // Every few minutes without a result, attach again (idempotent): a derivation workflow that closed meanwhile is started anew and answers.
    while (!(await condition(() => results.has(top.drvPath), '3 minutes'))) await attach([top]);
    return decideBuildOutcome(steps, results)!;
  }
}
