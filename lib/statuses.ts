/**
 * The words every layer uses for where a build, an evaluation or a build step stands: the workflows,
 * the activities that write the read model, and the API that lists and validates it (COMPAT.md).
 * Pure values and types only: the workflow bundle includes this file.
 */

/** Every status a build can have. */
export const BUILD_STATUSES = [
  'pending', 'running', 'succeeded', 'failed', 'dependency_failed', 'aborted', 'cancelled', 'failed_with_output', 'timeout',
  'cached_failure', 'unsupported_system', 'log_limit_exceeded', 'nar_size_limit_exceeded', 'non_deterministic', 'oom_killed',
] as const;
export type BuildStatus = (typeof BUILD_STATUSES)[number];

/** A build that is queued or running: it can still be cancelled or bumped. */
export const ACTIVE_BUILD_STATUSES: readonly BuildStatus[] = ['pending', 'running'];

/** A build that has ended: its log will not grow, and it can be restarted. */
export const FINISHED_BUILD_STATUSES: readonly BuildStatus[] = BUILD_STATUSES.filter((s) => !ACTIVE_BUILD_STATUSES.includes(s));

/** The statuses that mean "this build failed" (not pending, running, succeeded, aborted or cancelled). */
export const FAILED_BUILD_STATUSES: readonly BuildStatus[] = [
  'failed', 'dependency_failed', 'failed_with_output', 'timeout', 'cached_failure', 'unsupported_system',
  'log_limit_exceeded', 'nar_size_limit_exceeded', 'non_deterministic', 'oom_killed',
];

export function isActiveBuildStatus(status: string): status is BuildStatus {
  return (ACTIVE_BUILD_STATUSES as readonly string[]).includes(status);
}

export function isFinishedBuildStatus(status: string): status is BuildStatus {
  return (FINISHED_BUILD_STATUSES as readonly string[]).includes(status);
}

/** Every status an evaluation can have. */
export const EVALUATION_STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled', 'timed_out'] as const;
export type EvaluationStatus = (typeof EVALUATION_STATUSES)[number];

/** An evaluation that is pending or running: a newer one of the same jobset and branch supersedes it. */
export const ACTIVE_EVALUATION_STATUSES: readonly EvaluationStatus[] = ['pending', 'running'];

/** What a build step is doing right now (`build_steps.phase`, the build's status query). */
export const STEP_PHASES = ['queued', 'connecting', 'sending_inputs', 'building', 'receiving_outputs'] as const;
export type StepPhase = (typeof STEP_PHASES)[number];

/** The phases a realisation reports once a builder has the step (a queued step has none yet). */
export type RealisePhase = Exclude<StepPhase, 'queued'>;
