import type { Db } from '../lib/db';
import type { Logger } from '../lib/logger';

/**
 * The lines an operator reads while the stack runs: one per evaluation started and finished, per
 * build finished, per builder failure and back-off. Each is one structured log entry with the
 * facts as fields and a short sentence as the message. Nothing secret is read or passed.
 */

function secondsBetween(from: Date | string | null | undefined, to: Date | string | null | undefined): number | null {
  if (!from || !to) return null;
  return Math.round((new Date(to).getTime() - new Date(from).getTime()) / 100) / 10;
}

/** "project/jobset" of an evaluation, its jobs, errors and times, read from the read model. */
async function evaluationFacts(db: Db, evaluationId: string) {
  return db('evaluations as e')
    .join('jobsets as j', 'j.id', 'e.jobset_id')
    .join('projects as p', 'p.id', 'j.project_id')
    .where('e.id', evaluationId)
    .first(db.raw("p.name || '/' || j.name as jobset"), 'e.status', 'e.nr_jobs', 'e.nr_errors', 'e.error_message', 'e.commit_hash', 'e.created_at', 'e.started_at', 'e.completed_at');
}

export async function logEvaluationStarted(logger: Logger, db: Db, evaluationId: string): Promise<void> {
  const e = await evaluationFacts(db, evaluationId);
  if (!e) return;
  logger.info({ component: 'evaluation', event: 'evaluation_started', evaluation_id: evaluationId, jobset: e.jobset, commit: e.commit_hash }, `evaluation ${evaluationId} of ${e.jobset} started at ${e.commit_hash ?? 'its inputs'}`);
}

export async function logEvaluationFinished(logger: Logger, db: Db, evaluationId: string): Promise<void> {
  const e = await evaluationFacts(db, evaluationId);
  if (!e) return;
  const seconds = secondsBetween(e.started_at ?? e.created_at, e.completed_at);
  const fields = { component: 'evaluation', event: 'evaluation_finished', evaluation_id: evaluationId, jobset: e.jobset, status: e.status, jobs: e.nr_jobs ?? 0, errors: e.nr_errors ?? 0, duration_s: seconds, error: e.error_message ?? undefined };
  const summary = `evaluation ${evaluationId} of ${e.jobset} ${e.status}: ${fields.jobs} jobs, ${fields.errors} errors in ${seconds ?? '?'} s`;
  if (e.status === 'completed') logger.info(fields, summary);
  else logger.warn(fields, `${summary}${e.error_message ? ` (${e.error_message})` : ''}`);
}

/** What the line of a finished build says (`BUILD_FINISHED_FACTS` selects it). */
export interface BuildFinishedFacts {
  jobset: string;
  job_name: string;
  status: string;
  error_message: string | null;
  created_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
  evaluation_id: string;
  builder: string | null;
}

/** The columns of BuildFinishedFacts, over builds `b`, jobsets `j`, projects `p` and remote_builders `r`. */
export const BUILD_FINISHED_FACTS = "p.name || '/' || j.name as jobset, b.job_name, b.status, b.error_message, b.created_at, b.started_at, b.completed_at, b.evaluation_id, r.name as builder";

export async function logBuildFinished(logger: Logger, db: Db, buildId: string, known?: BuildFinishedFacts): Promise<void> {
  const b: BuildFinishedFacts | undefined =
    known ??
    (await db('builds as b')
      .join('jobsets as j', 'j.id', 'b.jobset_id')
      .join('projects as p', 'p.id', 'j.project_id')
      .leftJoin('remote_builders as r', 'r.id', 'b.builder_id')
      .where('b.id', buildId)
      .first(db.raw(BUILD_FINISHED_FACTS)));
  if (!b) return;
  const seconds = secondsBetween(b.started_at ?? b.created_at, b.completed_at);
  const builder = b.builder ?? 'local';
  const fields = { component: 'build', event: 'build_finished', build_id: buildId, evaluation_id: b.evaluation_id, jobset: b.jobset, job: b.job_name, status: b.status, duration_s: seconds, builder, error: b.status === 'succeeded' ? undefined : b.error_message ?? undefined };
  const summary = `build ${buildId} ${b.jobset}:${b.job_name} ${b.status} in ${seconds ?? '?'} s on ${builder}`;
  if (b.status === 'succeeded') logger.info(fields, summary);
  else logger.warn(fields, summary);
}

export function logBuilderFailure(logger: Logger, builder: { id: string; name: string }, drvPath: string, reason: string | null): void {
  logger.warn(
    { component: 'builder', event: 'builder_failure', builder: builder.name, builder_id: builder.id, drv_path: drvPath, reason },
    `builder ${builder.name} failed on ${drvPath}: ${reason ?? 'unknown'}; the step goes elsewhere`,
  );
}

export function logBuilderBackoff(logger: Logger, builder: { id: string; name: string }, failures: number, disabledUntil: Date, reason: string | null): void {
  logger.warn(
    { component: 'builder', event: 'builder_backoff', builder: builder.name, builder_id: builder.id, consecutive_failures: failures, disabled_until: disabledUntil.toISOString(), reason },
    `builder ${builder.name} backed off until ${disabledUntil.toISOString()} after ${failures} consecutive failure(s)`,
  );
}

export function logBuilderCheck(logger: Logger, builder: { id: string; name: string }, status: 'passed' | 'failed', error: string | null): void {
  const fields = { component: 'builder', event: 'builder_check', builder: builder.name, builder_id: builder.id, status, error: error ?? undefined };
  if (status === 'passed') logger.info(fields, `builder ${builder.name} passed its check (built a trivial derivation)`);
  else logger.warn(fields, `builder ${builder.name} failed its check: ${error ?? 'unknown'}`);
}
