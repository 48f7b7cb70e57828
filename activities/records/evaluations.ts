import type { EvaluationRow, Queryable } from '../../lib/db';
import { ACTIVE_EVALUATION_STATUSES, type EvaluationStatus } from '../../lib/statuses';
import { evaluationWorkflowId } from '../../lib/workflow-ids';

/** An input as the evaluation fetched it: the revision and store path it had. */
export interface EvaluationInputRecord {
  name: string;
  input_type: string;
  value: string;
  revision: string | null;
  store_path: string | null;
  dependency_build_id: string | null;
}

export async function findEvaluation(db: Queryable, id: string): Promise<EvaluationRow | undefined> {
  return db('evaluations').where({ id }).first();
}

/** An evaluation whose inputs could not be fetched: recorded as failed with the reason; answers its id. */
/** Set on an evaluation that a forge's pull/merge request webhook triggered: the request's number, head and base. */
export interface PullRequestColumns {
  pr_number?: number;
  pr_head?: string;
  pr_base?: string;
}

export async function insertUnfetchableEvaluation(
  db: Queryable,
  e: { jobsetId: string; errorMessage: string; trigger: string; branch: string | null; commitHash: string | null; pullRequest?: PullRequestColumns },
): Promise<string> {
  const [row] = await db('evaluations')
    .insert({ jobset_id: e.jobsetId, status: 'failed', error_message: e.errorMessage, trigger_kind: e.trigger, branch: e.branch, commit_hash: e.commitHash, completed_at: db.fn.now(), ...e.pullRequest })
    .returning('id');
  return row.id;
}

/** The newest evaluation of the jobset with these inputs that did not fail (source_change answers it instead of a new one). */
export async function findEvaluationWithInputsHash(db: Queryable, jobsetId: string, inputsHash: string): Promise<string | undefined> {
  const row = await db('evaluations')
    .where({ jobset_id: jobsetId, inputs_hash: inputsHash })
    .whereNotIn('status', ['failed', 'cancelled', 'timed_out'])
    .orderBy('created_at', 'desc')
    .first('id');
  return row?.id;
}

/** A new pending evaluation with its fetched inputs and its workflow ID; answers its id. Run it in a transaction. */
export async function insertEvaluation(
  db: Queryable,
  e: { jobsetId: string; commitHash: string; branch: string | null; inputsHash: string; trigger: string; pullRequest?: PullRequestColumns },
  inputs: EvaluationInputRecord[],
): Promise<string> {
  const [row] = await db('evaluations')
    .insert({ jobset_id: e.jobsetId, commit_hash: e.commitHash, branch: e.branch, status: 'pending', inputs_hash: e.inputsHash, trigger_kind: e.trigger, ...e.pullRequest })
    .returning('id');
  if (inputs.length) await db('evaluation_inputs').insert(inputs.map((i) => ({ ...i, evaluation_id: row.id })));
  await db('evaluations').where({ id: row.id }).update({ workflow_id: evaluationWorkflowId(row.id) });
  return row.id;
}

export async function inputsOfEvaluation(db: Queryable, evaluationId: string): Promise<EvaluationInputRecord[]> {
  return db('evaluation_inputs').where({ evaluation_id: evaluationId }).orderBy('name');
}

export async function markEvaluationRunning(db: Queryable, evaluationId: string): Promise<void> {
  await db('evaluations').where({ id: evaluationId }).update({ status: 'running', started_at: db.fn.now(), updated_at: db.fn.now() });
}

export async function insertEvaluationErrors(db: Queryable, errors: Array<{ evaluation_id: string; job_name: string; error_message: string }>): Promise<void> {
  if (errors.length) await db('evaluation_errors').insert(errors);
}

/** The job and error counts of an evaluation that has recorded its builds. */
export async function recordEvaluationCounts(db: Queryable, evaluationId: string, counts: { jobs: number; errors: number }): Promise<void> {
  await db('evaluations').where({ id: evaluationId }).update({
    nr_jobs: counts.jobs,
    nr_errors: counts.errors,
    evaluation_time: db.fn.now(),
    updated_at: db.fn.now(),
  });
}

/**
 * An evaluation that has recorded every build is `completed` from now on: the activity that recorded
 * them marks it in the transaction of its last writes, before the workflow's bookkeeping
 * (finishEvaluationRecord, notifications, channels). One that is no longer running (superseded
 * meanwhile) is left as it is.
 */
export async function markEvaluationCompleted(db: Queryable, evaluationId: string): Promise<void> {
  await db('evaluations').where({ id: evaluationId, status: 'running' }).update({ status: 'completed', error_message: null, completed_at: db.fn.now(), updated_at: db.fn.now() });
}

/** The evaluation's final status; one marked `completed` already (markEvaluationCompleted) keeps the time it completed. */
export async function finishEvaluationRecord(db: Queryable, evaluationId: string, status: EvaluationStatus, errorMessage: string | null): Promise<void> {
  await db('evaluations').where({ id: evaluationId }).update({
    status,
    error_message: errorMessage,
    completed_at: db.raw('coalesce(case when status = ? then completed_at end, now())', [status]),
    updated_at: db.fn.now(),
  });
}

/** The pending or running evaluations of the same jobset and branch, older than `current`. */
export async function olderActiveEvaluations(db: Queryable, current: EvaluationRow): Promise<Array<{ id: string }>> {
  return db('evaluations')
    .where({ jobset_id: current.jobset_id })
    .whereNot({ id: current.id })
    .where('created_at', '<', current.created_at)
    .whereIn('status', ACTIVE_EVALUATION_STATUSES)
    .modify((q) => (current.branch ? q.where({ branch: current.branch }) : q.whereNull('branch')))
    .select<Array<{ id: string }>>('id');
}

export async function markEvaluationSuperseded(db: Queryable, evaluationId: string, supersededBy: string): Promise<void> {
  await db('evaluations')
    .where({ id: evaluationId })
    .update({ status: 'cancelled', superseded_by: supersededBy, completed_at: db.fn.now(), error_message: `superseded by evaluation ${supersededBy}` });
}
