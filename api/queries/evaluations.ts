import { pageRows } from './page';
import type { Db, EvaluationRow } from '../../lib/db';
import { BUILD_STATUSES, EVALUATION_STATUSES, FAILED_BUILD_STATUSES, type BuildStatus, type EvaluationStatus } from '../../lib/statuses';

// The vocabulary is defined in lib/statuses.ts, the row type in lib/db.ts; re-exported for the modules that list evaluations.
export { EVALUATION_STATUSES, type EvaluationStatus, type EvaluationRow };

/** An evaluation in a list: the row plus its duration. */
export type EvaluationSummary = EvaluationRow & { duration_seconds: number | null };

export interface EvaluationInputView {
  name: string;
  input_type: string;
  value: string | null;
  revision: string | null;
  store_path: string | null;
  dependency_build_id: string | null;
}

/** One evaluation as GET /evaluations/{id} answers it. */
export interface EvaluationView extends EvaluationSummary {
  project_id: string | null;
  inputs: EvaluationInputView[];
  /** Builds of the evaluation by status, every status present (0 when none), plus `total`. */
  build_counts: Record<BuildStatus | 'total', number>;
  errors: { job_name: string; error_message: string }[];
}

function durationSeconds(row: EvaluationRow): number | null {
  if (!row.started_at || !row.completed_at) return null;
  return Math.max(0, (row.completed_at.getTime() - row.started_at.getTime()) / 1000);
}

export function evaluationSummary(row: EvaluationRow): EvaluationSummary {
  return { ...row, duration_seconds: durationSeconds(row) };
}

export interface EvaluationFilter {
  project_id?: string;
  jobset_id?: string;
  status?: EvaluationStatus;
  /** Hidden evaluations are listed for admins only (as circus does). */
  include_hidden?: boolean;
  limit: number;
  offset: number;
}

export async function pageEvaluations(db: Db, f: EvaluationFilter) {
  const base = db('evaluations');
  if (f.jobset_id) base.where('evaluations.jobset_id', f.jobset_id);
  if (f.status) base.where('evaluations.status', f.status);
  if (!f.include_hidden) base.where('evaluations.hidden', false);
  if (f.project_id) base.whereIn('evaluations.jobset_id', db('jobsets').select('id').where('project_id', f.project_id));
  const { rows, ...page } = await pageRows<EvaluationRow>(
    base,
    f,
    [{ column: 'evaluations.created_at', order: 'desc' }, { column: 'evaluations.id', order: 'desc' }],
    'evaluations.*',
  );
  return { items: rows.map(evaluationSummary), ...page };
}

export async function findEvaluation(db: Db, id: string): Promise<EvaluationRow | undefined> {
  return db('evaluations').where({ id }).first();
}

/** An evaluation with its jobset's name and project, and the evaluation of the same jobset just before it: the evaluation page's head, in one query. */
export interface EvaluationInContext extends EvaluationRow {
  jobset_name: string;
  project_id: string;
  previous_id: string | null;
}

export async function findEvaluationInContext(db: Db, id: string): Promise<EvaluationInContext | undefined> {
  const r = await db.raw(
    `SELECT e.*, j.name AS jobset_name, j.project_id,
            (SELECT p.id FROM evaluations p WHERE p.jobset_id = e.jobset_id AND (p.created_at, p.id) < (e.created_at, e.id)
             ORDER BY p.created_at DESC, p.id DESC LIMIT 1) AS previous_id
     FROM evaluations e JOIN jobsets j ON j.id = e.jobset_id WHERE e.id = ?`,
    [id],
  );
  return r.rows[0] as EvaluationInContext | undefined;
}

/** The API's view of an evaluation; `projectId` when the caller knows it already (one query fewer). */
export async function evaluationView(db: Db, row: EvaluationRow, projectId?: string): Promise<EvaluationView> {
  const [inputs, counts, errors, jobset] = await Promise.all([
    db('evaluation_inputs')
      .select('name', 'input_type', 'value', 'revision', 'store_path', 'dependency_build_id')
      .where({ evaluation_id: row.id })
      .orderBy('name') as Promise<EvaluationInputView[]>,
    db('builds').select('status').count<{ status: string; count: string }[]>('* as count').where({ evaluation_id: row.id }).groupBy('status'),
    db('evaluation_errors').select('job_name', 'error_message').where({ evaluation_id: row.id }).orderBy([{ column: 'job_name' }, { column: 'id' }]) as Promise<
      { job_name: string; error_message: string }[]
    >,
    projectId !== undefined
      ? Promise.resolve({ project_id: projectId })
      : (db('jobsets').select('project_id').where({ id: row.jobset_id }).first() as Promise<{ project_id: string } | undefined>),
  ]);
  const build_counts = Object.fromEntries([...BUILD_STATUSES.map((s) => [s, 0]), ['total', 0]]) as Record<BuildStatus | 'total', number>;
  for (const c of counts) {
    const n = Number(c.count);
    build_counts.total += n;
    if (c.status in build_counts) build_counts[c.status as BuildStatus] += n;
  }
  return { ...evaluationSummary(row), project_id: jobset?.project_id ?? null, inputs, build_counts, errors };
}

export interface JobDiff {
  job_name: string;
  system: string;
  drv_path: string;
  status: string;
  build_id: string;
}

export interface JobChange {
  job_name: string;
  system: string;
  old_drv: string;
  new_drv: string;
  old_status: string;
  new_status: string;
  old_build_id: string;
  new_build_id: string;
}

/** A job whose result flipped between the two evaluations. */
export interface JobFlip {
  job_name: string;
  system: string;
  old_status: string;
  new_status: string;
  old_build_id: string;
  new_build_id: string;
}

export interface EvaluationComparison {
  from_id: string;
  to_id: string;
  new_jobs: JobDiff[];
  removed_jobs: JobDiff[];
  changed_jobs: JobChange[];
  newly_failing: JobFlip[];
  fixed: JobFlip[];
  unchanged_count: number;
}

interface JobRow {
  id: string;
  job_name: string;
  system: string;
  drv_path: string;
  status: string;
}

const isFailed = (status: string) => (FAILED_BUILD_STATUSES as readonly string[]).includes(status);

/**
 * Compares two evaluations job by job, as circus does: `from` is the evaluation of the path ({id}),
 * `to` the one named by ?to=. new_jobs are in `to` only, removed_jobs in `from` only; changed_jobs
 * have the same name and another derivation; newly_failing succeeded in `from` and failed in `to`,
 * fixed the reverse.
 */
export async function compareEvaluations(db: Db, fromId: string, toId: string): Promise<EvaluationComparison> {
  // Both evaluations' builds in one query, split by evaluation.
  const rows = (await db('builds').select('id', 'evaluation_id', 'job_name', 'system', 'drv_path', 'status').whereIn('evaluation_id', [fromId, toId])) as Array<
    JobRow & { evaluation_id: string }
  >;
  const jobsOf = (evaluationId: string) => new Map(rows.filter((b) => b.evaluation_id === evaluationId).map(({ evaluation_id: _e, ...b }) => [b.job_name, b]));
  const [from, to] = [jobsOf(fromId), jobsOf(toId)];
  const byName = <T extends { job_name: string }>(list: T[]) => list.sort((a, b) => (a.job_name < b.job_name ? -1 : a.job_name > b.job_name ? 1 : 0));
  const diff = (b: JobRow): JobDiff => ({ job_name: b.job_name, system: b.system, drv_path: b.drv_path, status: b.status, build_id: b.id });

  const result: EvaluationComparison = { from_id: fromId, to_id: toId, new_jobs: [], removed_jobs: [], changed_jobs: [], newly_failing: [], fixed: [], unchanged_count: 0 };
  for (const [name, b] of to) if (!from.has(name)) result.new_jobs.push(diff(b));
  for (const [name, a] of from) {
    const b = to.get(name);
    if (!b) {
      result.removed_jobs.push(diff(a));
      continue;
    }
    if (a.drv_path === b.drv_path) result.unchanged_count++;
    else {
      result.changed_jobs.push({
        job_name: name, system: b.system, old_drv: a.drv_path, new_drv: b.drv_path, old_status: a.status, new_status: b.status, old_build_id: a.id, new_build_id: b.id,
      });
    }
    const flip = { job_name: name, system: b.system, old_status: a.status, new_status: b.status, old_build_id: a.id, new_build_id: b.id };
    if (a.status === 'succeeded' && isFailed(b.status)) result.newly_failing.push(flip);
    if (isFailed(a.status) && b.status === 'succeeded') result.fixed.push(flip);
  }
  byName(result.new_jobs);
  byName(result.removed_jobs);
  byName(result.changed_jobs);
  byName(result.newly_failing);
  byName(result.fixed);
  return result;
}
