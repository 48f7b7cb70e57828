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
}

export const requestSlotSignal = defineSignal<[SlotRequest]>('requestSlot');
export const withdrawRequestSignal = defineSignal<[{ requestId: string }]>('withdrawRequest');
export const releaseSlotSignal = defineSignal<[SlotRelease]>('releaseSlot');
export const reprioritizeSignal = defineSignal<[{ requestId: string; priority: number }]>('reprioritize');
export const buildersChangedSignal = defineSignal('buildersChanged');

export interface DispatcherView {
  queue: Array<SlotRequest & { seq: number }>;
  running: Record<string, string[]>;
  builders: Array<{ id: string; maxJobs: number; running: number; disabledUntil: number | null }>;
}
export const dispatcherStateQuery = defineQuery<DispatcherView>('state');
