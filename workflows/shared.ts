import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { BuildStatus, StepPhase } from '../lib/statuses';

/**
 * Messages and types shared by the workflows, the activities and the API, so both sides name them once
 * (`handle.signal(bumpBuildSignal, …)`). Pure types and definitions only: this file is bundled into
 * the workflow sandbox.
 */

export type { BuildStatus, EvaluationStatus, StepPhase } from '../lib/statuses';

export type TriggerKind = 'source_change' | 'manual' | 'interval';

/** The builder id the dispatcher uses for the worker's own Nix (Hydra's localhost fallback). */
export const LOCAL_BUILDER = 'local';

// Workflow IDs are built in lib/workflow-ids.ts; these names stay importable from here too.
export { buildWorkflowId, derivationWorkflowId, dispatcherWorkflowId, evaluationWorkflowId } from '../lib/workflow-ids';

// ---- CheckJobsetWorkflow ----
export interface CheckJobsetInput {
  jobsetId: string;
  trigger: TriggerKind;
  commitHash?: string | null;
  /** A forge webhook's git ref, evaluated instead of the jobset's branch: a branch, `refs/tags/<tag>` or `refs/pull/<n>/head`. */
  ref?: string | null;
  /** The pull/merge request a webhook evaluation is for (recorded on the evaluation). */
  pullRequest?: { number: number; head: string; base: string } | null;
}
export interface CheckJobsetResult {
  evaluationId: string;
  created: boolean;
}

// ---- EvaluationWorkflow ----
export interface EvaluationInput {
  evaluationId: string;
}

// ---- BuildWorkflow ----
export interface BuildInput {
  buildId: string;
  restart?: boolean;
  /**
   * The build's final status, recorded before its workflow started (issue 6: found built at its evaluation,
   * or its derivation realised by a batch while the build was held back): the workflow ends at once with
   * it, without a local activity. Set only by the first start of a build whose row was read finished.
   */
  recorded?: BuildStatus;
}

export interface BuildStatusView {
  buildId: string;
  status: BuildStatus;
  phase: StepPhase | 'waiting' | 'finished' | 'starting';
  builderId: string | null;
  waitingFor: string | null;
  priority: number;
  steps: Array<{ drvPath: string; status: string; phase: string | null; builderId: string | null }>;
}

export const buildStatusQuery = defineQuery<BuildStatusView>('status');
export const bumpBuildUpdate = defineUpdate<{ priority: number }, [{ priority: number }]>('bump');

// ---- DerivationWorkflow ----
export interface DerivationInput {
  drvPath: string;
  system: string;
  requiredFeatures: string[];
  priority: number;
  jobsetId: string;
  shares: number;
  /** The build whose log receives this derivation's log. */
  logBuildId: string;
  timeoutSeconds: number;
  maxSilentSeconds: number;
  /**
   * The derivation workflow plans its own input derivations (those whose outputs are not valid yet),
   * waits on them as their waiter, and answers `dependency_failed` when one fails: a build then waits on
   * its top derivation only (issue 6). Unset in workflows started before that.
   */
  plansInputs?: boolean;
}

export type DerivationStatus = 'succeeded' | 'failed' | 'timeout' | 'log_limit_exceeded' | 'cached_failure' | 'unsupported_system' | 'cancelled' | 'aborted' | 'dependency_failed';

export interface DerivationResult {
  drvPath: string;
  status: DerivationStatus;
  outputs: Record<string, string>;
  errorMessage: string | null;
  builderId: string | null;
  logPath: string | null;
}

export interface WaiterRef {
  workflowId: string;
  priority: number;
  /**
   * The waiter hears of a result other than `succeeded` only (issue 6): a derivation queued for a batch
   * before its inputs were built learns its own result from the batch, and needs an input's result only
   * when that input failed. Each success told to such a waiter cost a signal and a workflow task.
   */
  failuresOnly?: boolean;
}

export const addWaiterSignal = defineSignal<[WaiterRef]>('addWaiter');
export const removeWaiterSignal = defineSignal<[{ workflowId: string }]>('removeWaiter');
export const raisePrioritySignal = defineSignal<[{ priority: number }]>('raisePriority');
/** Sent by the dispatcher to a derivation workflow. */
export const slotGrantedSignal = defineSignal<[SlotGrant]>('slotGranted');
/** Sent by a derivation workflow to each waiter: a build, or a derivation that has it as an input. */
export const derivationFinishedSignal = defineSignal<[DerivationResult]>('derivationFinished');
/** Sent by a derivation workflow to a build when its phase changes. */
export const stepProgressSignal = defineSignal<[{ drvPath: string; phase: StepPhase; builderId: string | null }]>('stepProgress');

// ---- DispatcherWorkflow ----
export interface SlotRequest {
  requestId: string;
  system: string;
  requiredFeatures: string[];
  priority: number;
  jobsetId: string;
  shares: number;
  /** Builders that failed this request already: try others first. */
  avoidBuilders?: string[];
  /**
   * Set by a derivation that may be realised in a batch (issue 6): the dispatcher then hands it, with
   * other queued steps, to one `nix-store --realise` on the worker's own Nix (its `realiseBatch`
   * activity) instead of granting it a slot, and its result comes back as a `stepRealised` signal.
   */
  batch?: BatchStep;
}

/** What a batch needs to realise one derivation and tell its workflow (the request's ID) the result. */
export interface BatchStep {
  drvPath: string;
  /** The build whose log receives this derivation's log. */
  logBuildId: string;
  timeoutSeconds: number;
  maxSilentSeconds: number;
  /**
   * Its input derivations (.drv paths) still unbuilt when it queued (it queued ahead of them: the
   * batch's Nix builds them along). A batch holds a slot for each of those too, up to the builder's
   * free slots, so a member that brings its closure along is not built one derivation at a time; and
   * while it runs, their own requests go to no other builder (they would be built twice at once).
   */
  pendingInputs?: string[];
}

export interface SlotGrant {
  requestId: string;
  builderId: string | null;
  /** Set when no enabled builder (nor the local fallback) can ever build this system/features. */
  unsupported?: string;
}

export interface SlotRelease {
  requestId: string;
  builderId: string;
  builderFailed: boolean;
  failureMessage?: string;
  /** A running batch gives back this many of its slots (fewer derivations are left to build than it holds); the rest stay its own. */
  slots?: number;
}

export const requestSlotSignal = defineSignal<[SlotRequest]>('requestSlot');
/**
 * A request is no longer wanted: dropped from the queue. When it is a member of a running batch, `kill`
 * (the derivation was cancelled) stops that batch, whose other unfinished members are queued again.
 */
export const withdrawRequestSignal = defineSignal<[{ requestId: string; kill?: boolean }]>('withdrawRequest');
/**
 * A batch's extras (`BatchExtras`), by their derivation workflows' IDs, as its activity chose them: a
 * `withdrawRequest` with `kill` for one of them (its build was cancelled) stops that batch too.
 */
export const batchExtrasSignal = defineSignal<[{ batchId: string; requestIds: string[] }]>('batchExtras');
export const releaseSlotSignal = defineSignal<[SlotRelease]>('releaseSlot');
export const reprioritizeSignal = defineSignal<[{ requestId: string; priority: number }]>('reprioritize');
export const buildersChangedSignal = defineSignal('buildersChanged');

export interface DispatcherView {
  queue: Array<SlotRequest & { seq: number }>;
  running: Record<string, string[]>;
  builders: Array<{ id: string; maxJobs: number; running: number; disabledUntil: number | null }>;
  /**
   * The evaluations whose waiting derivations a running batch of this dispatcher run realises (asked for
   * with `realiseEvaluation`); absent from dispatchers of older code. Not kept across continue-as-new.
   */
  evaluationBatches?: string[];
}
export const dispatcherStateQuery = defineQuery<DispatcherView>('state');

// ---- Batches (the dispatcher's realiseBatch activity) ----
export interface RealiseBatchInput {
  batchId: string;
  builderId: string;
  /** The slots the batch holds: its nix-store's `--max-jobs`. */
  slots: number;
  /** Each member's request ID is its derivation workflow's ID. */
  members: Array<BatchStep & { requestId: string }>;
  /**
   * Set when the batch may also realise other derivations of its first member's evaluation that wait
   * for their turn (issue 6, `BatchExtras`): only when its builder is the only enabled one and no other
   * running batch takes such extras.
   */
  extras?: BatchExtras;
}

/**
 * Which other derivations a batch realises beside its members ("extras"): the top derivations of the
 * unfinished builds of its first member's evaluation with the same system, priority and time limits,
 * no required system features and no cached failure, whose outputs are not valid, at most `limit`.
 * Built there, each is told to its own workflow as an input built along is (or found valid when its
 * build plans it): Nix realises the evaluation at its own pace while the builds' workflows catch up.
 */
export type BatchExtras = { limit: number } & ({ system: string; priority: number } | { evaluationId: string });

/**
 * An evaluation has recorded its builds (sent as their workflows start to): when the only enabled builder
 * is free, the dispatcher starts a batch of that evaluation's waiting derivations at once, a batch with
 * extras and no member (`BatchExtras` with `evaluationId`: the system, priority and time limits of its
 * first waiting build), instead of waiting for the first build's derivation to queue.
 */
export const realiseEvaluationSignal = defineSignal<[{ evaluationId: string }]>('realiseEvaluation');

/**
 * How a batch's nix-store left one derivation. Besides a realisation's own statuses:
 * - `dependency_failed`: Nix did not build it because an input failed (the input's own workflow reports that failure);
 * - `interrupted`: the batch was stopped for another member (cancelled, over its log limit): queue it again.
 */
export type StepRealisationStatus = 'succeeded' | 'failed' | 'timeout' | 'log_limit_exceeded' | 'builder_failure' | 'dependency_failed' | 'interrupted';

export interface StepRealisation {
  drvPath: string;
  status: StepRealisationStatus;
  outputs: Record<string, string>;
  errorMessage: string | null;
  builderId: string;
  logPath: string | null;
  /** Nix built it along as an input of the batch's members, not as a member: its own request may still be queued. */
  alongInput?: boolean;
}

/** Sent by a batch's activity to a derivation workflow as soon as its derivation has ended in the batch. */
export const stepRealisedSignal = defineSignal<[StepRealisation]>('stepRealised');

// ---- ServeBuildOutputsWorkflow ----
/** Sent by finishBuild (signal-with-start) when it queued a build's outputs in an empty queue. */
export const buildOutputsQueuedSignal = defineSignal('buildOutputsQueued');
