import type { Db } from '../../lib/db';
import { ACTIVE_BUILD_STATUSES } from '../../lib/statuses';
import type { BuildSearchContext } from '../../lib/search-attributes';

/** Builds that depend on `buildId`, directly or through other builds (transitively), with their status. */
export async function transitiveDependents(db: Db, buildId: string): Promise<Array<{ id: string; status: string }>> {
  const r = await db.raw(
    `WITH RECURSIVE deps(id) AS (
       SELECT build_id FROM build_dependencies WHERE dependency_build_id = ?
       UNION
       SELECT d.build_id FROM build_dependencies d JOIN deps ON d.dependency_build_id = deps.id
     )
     SELECT b.id, b.status FROM builds b JOIN deps ON deps.id = b.id`,
    [buildId],
  );
  return r.rows as Array<{ id: string; status: string }>;
}

/** Aggregates that include `buildId` as a constituent. */
export async function aggregatesOf(db: Db, buildId: string): Promise<Array<{ id: string; status: string }>> {
  return db('aggregate_constituents as a').join('builds as b', 'b.id', 'a.aggregate_build_id').where('a.constituent_build_id', buildId).select('b.id', 'b.status');
}

/** Resets a finished build to pending for a restart, and forgets its derivation's cached failure. */
export async function resetBuildForRestart(db: Db, buildId: string): Promise<void> {
  const build = await db('builds').where({ id: buildId }).first('drv_path');
  if (build) await db('cached_failures').where({ drv_path: build.drv_path }).delete();
  await db('builds')
    .where({ id: buildId })
    .update({
      status: 'pending',
      error_message: null,
      started_at: null,
      completed_at: null,
      retry_count: db.raw('retry_count + 1'),
      updated_at: db.fn.now(),
    });
}

/**
 * A queued build's new priority in the read model: a build whose workflow has not started yet (its
 * evaluation starts them after completing) plans with it when it starts. Answers whether it was queued.
 */
export async function setQueuedBuildPriority(db: Db, buildId: string, priority: number): Promise<boolean> {
  const queued = (await db('builds').where({ id: buildId }).whereIn('status', ACTIVE_BUILD_STATUSES).update({ priority, updated_at: db.fn.now() })) > 0;
  // Its workflow, if still to start, starts in the new order.
  if (queued) await db('build_workflow_starts').where({ build_id: buildId }).update({ priority });
  return queued;
}

/** The priority that puts a build in front of every queued one. */
export async function frontPriority(db: Db, current: number): Promise<number> {
  const row = await db('builds').whereIn('status', ACTIVE_BUILD_STATUSES).max<{ max: number | null }>('priority as max').first();
  return Math.max(current, row?.max ?? 0) + 1;
}

export async function findBuildRow(db: Db, id: string) {
  return db('builds').where({ id }).first();
}

export async function findEvaluationRow(db: Db, id: string) {
  return db('evaluations').where({ id }).first();
}

export async function findJobsetRow(db: Db, id: string) {
  return db('jobsets').where({ id }).first();
}

/** What names a build in Temporal's search attributes (project, jobset, job, system, evaluation). */
export async function findBuildSearchContext(db: Db, buildId: string): Promise<BuildSearchContext | undefined> {
  const row = await db('builds as b')
    .join('jobsets as j', 'j.id', 'b.jobset_id')
    .join('projects as p', 'p.id', 'b.project_id')
    .where('b.id', buildId)
    .first('b.id', 'b.job_name', 'b.system', 'b.evaluation_id', 'j.name as jobset_name', 'p.name as project_name');
  if (!row) return undefined;
  return { buildId: row.id, jobName: row.job_name, system: row.system, evaluationId: row.evaluation_id, jobsetName: row.jobset_name, projectName: row.project_name };
}
