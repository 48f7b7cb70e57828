import type { Db } from '../../lib/db';
import type { Queryable } from './jobsets';

/** A row of channels (COMPAT.md's Channel, plus Ringmaster's promotion rule and time). */
export interface ChannelRow {
  id: string;
  project_id: string;
  name: string;
  jobset_id: string;
  current_evaluation_id: string | null;
  /** The job whose success makes an evaluation good; null: every build must succeed. */
  aggregate_job: string | null;
  promoted_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface ChannelFields {
  project_id: string;
  name: string;
  jobset_id: string;
  aggregate_job: string | null;
}

const byName = [{ column: 'name', order: 'asc' as const }];

/** Channels by name (the unique index on name orders them); a page of them when `page` is given. */
export async function listChannels(db: Db, page?: { limit: number; offset: number }): Promise<ChannelRow[]> {
  const query = db('channels').select('*').orderBy(byName);
  if (page) query.limit(page.limit).offset(page.offset);
  return query;
}

export async function listProjectChannels(db: Db, projectId: string): Promise<ChannelRow[]> {
  return db('channels').where({ project_id: projectId }).select('*').orderBy(byName);
}

export async function listJobsetChannels(db: Queryable, jobsetId: string): Promise<ChannelRow[]> {
  return db('channels').where({ jobset_id: jobsetId }).select('*').orderBy(byName);
}

export async function findChannel(db: Queryable, id: string): Promise<ChannelRow | undefined> {
  return db('channels').where({ id }).first();
}

export async function findChannelByName(db: Db, name: string): Promise<ChannelRow | undefined> {
  return db('channels').where({ name }).first();
}

/** The channel's row, locked until the transaction ends: promotions of one channel happen one at a time. */
export async function lockChannel(trx: Queryable, id: string): Promise<ChannelRow | undefined> {
  return trx('channels').where({ id }).forUpdate().first();
}

export async function insertChannel(db: Db, fields: ChannelFields): Promise<ChannelRow> {
  const [row] = await db('channels').insert(fields).returning('*');
  return row as ChannelRow;
}

export async function deleteChannel(db: Db, id: string): Promise<boolean> {
  return (await db('channels').where({ id }).delete()) > 0;
}

export async function setChannelEvaluation(trx: Queryable, id: string, evaluationId: string): Promise<ChannelRow> {
  const [row] = await trx('channels')
    .where({ id })
    .update({ current_evaluation_id: evaluationId, promoted_at: trx.fn.now(), updated_at: trx.fn.now() })
    .returning('*');
  return row as ChannelRow;
}

/** The evaluation fields promotion looks at. */
export interface PromotableEvaluation {
  id: string;
  jobset_id: string;
  status: string;
  commit_hash: string | null;
  created_at: Date;
}

export async function findPromotableEvaluation(db: Queryable, id: string): Promise<PromotableEvaluation | undefined> {
  return db('evaluations').where({ id }).first('id', 'jobset_id', 'status', 'commit_hash', 'created_at');
}

/** The newest completed evaluations of a jobset, newest first. */
export async function recentCompletedEvaluations(db: Db, jobsetId: string, limit: number): Promise<Array<{ id: string; created_at: Date; commit_hash: string | null }>> {
  return db('evaluations')
    .where({ jobset_id: jobsetId, status: 'completed' })
    .orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }])
    .limit(limit)
    .select('id', 'created_at', 'commit_hash');
}

/** The IDs of the newest completed evaluations of a jobset, newest first. */
export async function recentCompletedEvaluationIds(db: Db, jobsetId: string, limit: number): Promise<string[]> {
  return (await recentCompletedEvaluations(db, jobsetId, limit)).map((r) => r.id);
}

/** The build's evaluation when its jobset has a channel (one statement); undefined otherwise. */
export async function evaluationOfBuildWithChannels(db: Db, buildId: string): Promise<string | undefined> {
  const row: { evaluation_id: string } | undefined = await db('builds as b')
    .where('b.id', buildId)
    .whereExists((q) => q.select(db.raw('1')).from('channels as c').whereRaw('c.jobset_id = b.jobset_id'))
    .first('b.evaluation_id');
  return row?.evaluation_id;
}

/** Whether some build of the evaluation is still pending or running (a cheap check before counting). */
export async function hasUnfinishedBuilds(db: Queryable, evaluationId: string): Promise<boolean> {
  const row = await db('builds').where({ evaluation_id: evaluationId }).whereIn('status', ['pending', 'running']).first('id');
  return row !== undefined;
}

/** What decides whether an evaluation is good enough for a channel. */
export interface EvaluationOutcome {
  status: string;
  builds: number;
  unfinished: number;
  succeeded: number;
  evaluationErrors: number;
  /** The status of the named job's build; undefined when none was asked for, null when the evaluation has no such job. */
  jobStatus?: string | null;
}

export async function evaluationOutcome(db: Queryable, evaluationId: string, jobName: string | null): Promise<EvaluationOutcome | undefined> {
  const evaluation = await db('evaluations').where({ id: evaluationId }).first('status');
  if (!evaluation) return undefined;
  const [counts] = await db('builds')
    .where({ evaluation_id: evaluationId })
    .select(
      db.raw('count(*)::int as builds'),
      db.raw(`count(*) filter (where status in ('pending', 'running'))::int as unfinished`),
      db.raw(`count(*) filter (where status = 'succeeded')::int as succeeded`),
    );
  const [{ errors }] = await db('evaluation_errors').where({ evaluation_id: evaluationId }).select(db.raw('count(*)::int as errors'));
  const outcome: EvaluationOutcome = {
    status: evaluation.status,
    builds: counts.builds,
    unfinished: counts.unfinished,
    succeeded: counts.succeeded,
    evaluationErrors: errors,
  };
  if (jobName !== null) {
    const job = await db('builds').where({ evaluation_id: evaluationId, job_name: jobName }).first('status');
    outcome.jobStatus = job ? job.status : null;
  }
  return outcome;
}

/** One succeeded job of a channel's evaluation, with its outputs. */
export interface ChannelJob {
  job_name: string;
  drv_path: string;
  system: string;
  meta_description: string | null;
  meta_license: string | null;
  meta_homepage: string | null;
  /** output name → store path */
  outputs: Record<string, string>;
}

/** The succeeded builds of an evaluation that have outputs, ordered by job name. */
export async function channelJobs(db: Db, evaluationId: string): Promise<ChannelJob[]> {
  const builds: Array<Omit<ChannelJob, 'outputs'> & { id: string }> = await db('builds')
    .where({ evaluation_id: evaluationId, status: 'succeeded' })
    .orderBy('job_name')
    .select('id', 'job_name', 'drv_path', 'system', 'meta_description', 'meta_license', 'meta_homepage');
  const outputs: Array<{ build_id: string; name: string; path: string }> = await db('build_outputs as o')
    .join('builds as b', 'b.id', 'o.build_id')
    .where({ 'b.evaluation_id': evaluationId, 'b.status': 'succeeded' })
    .select('o.build_id', 'o.name', 'o.path');
  const byBuild = new Map<string, Record<string, string>>();
  for (const o of outputs) (byBuild.get(o.build_id) ?? byBuild.set(o.build_id, {}).get(o.build_id)!)[o.name] = o.path;
  return builds
    .filter((b) => byBuild.has(b.id))
    .map(({ id, ...b }) => ({ ...b, outputs: byBuild.get(id)! }));
}

/** Where an evaluation came from: its project, jobset and git revision. */
export async function evaluationSource(db: Db, evaluationId: string): Promise<{ project: string; jobset: string; commit_hash: string | null } | undefined> {
  return db('evaluations as e')
    .join('jobsets as j', 'j.id', 'e.jobset_id')
    .join('projects as p', 'p.id', 'j.project_id')
    .where('e.id', evaluationId)
    .first('p.name as project', 'j.name as jobset', 'e.commit_hash');
}

/**
 * A fingerprint of an evaluation's results: it changes whenever a build of the evaluation changes
 * (every status change stamps updated_at), so a file generated from them can be reused until then.
 */
export async function evaluationResultsVersion(db: Db, evaluationId: string): Promise<string> {
  const [row] = await db('builds')
    .where({ evaluation_id: evaluationId })
    .select(db.raw('count(*)::int as builds'), db.raw(`count(*) filter (where status = 'succeeded')::int as succeeded`), db.raw('max(updated_at) as latest'));
  const latest = row.latest instanceof Date ? row.latest.toISOString() : String(row.latest);
  return `${row.builds}/${row.succeeded}/${latest}`;
}
