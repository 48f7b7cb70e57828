import { ApplicationFailure, ActivityFailure, CancellationScope, isCancellation, patched, proxyActivities, proxyLocalActivities, startChild, ParentClosePolicy, TimeoutFailure } from '@temporalio/workflow';
import type { EvaluationActivities } from '../activities/evaluation';
import { evaluationWorkflowId, type CheckJobsetInput, type CheckJobsetResult, type EvaluationInput } from './shared';
import type { EvaluationStatus } from '../lib/statuses';

const local = proxyLocalActivities<EvaluationActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 10 },
});

const { prepareEvaluation } = proxyActivities<EvaluationActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['SourceError', 'NotFound'] },
});

const { evaluateAndRecord } = proxyActivities<EvaluationActivities>({
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '2 minutes',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['EvaluationError', 'SourceError', 'NotFound'] },
});

/**
 * Starts the builds' workflows after the evaluation is `completed`, from `build_workflow_starts`, in an
 * activity that loops over pages (one activity whatever the number of builds). Retried without limit: a
 * Temporal outage delays the starts, it does not fail an evaluation that has recorded its builds. It
 * keeps at most RINGMASTER_MAX_OPEN_BUILDS build workflows open, so it lasts until the evaluation's last
 * builds can start (hours for a big one): the heartbeat, not the start-to-close timeout, notices a dead worker.
 */
const { startBuildWorkflowsOfEvaluation } = proxyActivities<EvaluationActivities>({
  startToCloseTimeout: '7 days',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', nonRetryableErrorTypes: ['NotFound'] },
});

/**
 * Histories recorded before it waited in evaluateAndRecord for every build workflow to start, and
 * completed the evaluation after that; with it, the evaluation completes once its builds are recorded,
 * and startBuildWorkflowsOfEvaluation starts what is left.
 */
const BUILD_STARTS_AFTER_COMPLETION_PATCH = 'evaluation-completes-before-build-starts';

/**
 * Checks a jobset: fetches its source and inputs, hashes them, and starts an EvaluationWorkflow
 * unless (under trigger mode source_change) an evaluation with the same inputs exists. The API's
 * trigger runs it to completion; each jobset's Temporal Schedule starts it on the check interval.
 */
export async function CheckJobsetWorkflow(input: CheckJobsetInput): Promise<CheckJobsetResult> {
  const prepared = await prepareEvaluation(input);
  if (prepared.created) {
    await startChild(EvaluationWorkflow, {
      workflowId: evaluationWorkflowId(prepared.evaluationId),
      args: [{ evaluationId: prepared.evaluationId }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      typedSearchAttributes: prepared.searchAttributes,
    });
  }
  return { evaluationId: prepared.evaluationId, created: prepared.created };
}

/**
 * One per evaluation (ID `eval-<id>`): evaluates the jobset as a stream of jobs and records builds in
 * batches (starting their BuildWorkflows while evaluating), completes once every build is recorded,
 * supersedes older evaluations, then starts the build workflows still to start.
 */
export async function EvaluationWorkflow(input: EvaluationInput): Promise<{ status: EvaluationStatus; jobs: number; errors: number }> {
  const startsInBackground = patched(BUILD_STARTS_AFTER_COMPLETION_PATCH);
  // The recorded builds' workflows start after the evaluation ends, however it ends: none stays pending without one.
  const startRecorded = async () => {
    if (startsInBackground) await startBuildWorkflowsOfEvaluation({ evaluationId: input.evaluationId });
  };
  let summary: { jobs: number; errors: number };
  try {
    summary = await evaluateAndRecord({ evaluationId: input.evaluationId, startsInBackground });
    await local.finishEvaluation({ evaluationId: input.evaluationId, status: 'completed', errorMessage: null });
    await local.supersedeOlderEvaluations({ evaluationId: input.evaluationId });
  } catch (err) {
    // Superseded: the newer evaluation already recorded this one as cancelled.
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(startRecorded);
      throw err;
    }
    const cause = err instanceof ActivityFailure ? err.cause : err;
    const timedOut = cause instanceof TimeoutFailure;
    const message = cause instanceof ApplicationFailure || cause instanceof Error ? cause.message : String(cause);
    const status: EvaluationStatus = timedOut ? 'timed_out' : 'failed';
    await local.finishEvaluation({ evaluationId: input.evaluationId, status, errorMessage: message });
    await startRecorded();
    return { status, jobs: 0, errors: 1 };
  }
  await startRecorded();
  return { status: 'completed', jobs: summary.jobs, errors: summary.errors };
}
