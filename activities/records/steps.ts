import type { Db, Queryable } from '../../lib/db';
import { ACTIVE_BUILD_STATUSES } from '../../lib/statuses';

export interface StepUpdate {
  status?: string;
  phase?: string | null;
  builderId?: string | null;
  startedAt?: Date;
  completedAt?: Date;
  exitCode?: number | null;
  errorMessage?: string | null;
}

/** Updates the step rows of every unfinished build that waits on this derivation (one shared realisation). */
export async function markStepsOfDerivation(db: Queryable, drvPath: string, u: StepUpdate): Promise<void> {
  const patch: Record<string, unknown> = {};
  if (u.status !== undefined) patch.status = u.status;
  if (u.phase !== undefined) patch.phase = u.phase;
  if (u.builderId !== undefined) patch.builder_id = u.builderId;
  if (u.startedAt !== undefined) patch.started_at = u.startedAt;
  if (u.completedAt !== undefined) patch.completed_at = u.completedAt;
  if (u.exitCode !== undefined) patch.exit_code = u.exitCode;
  if (u.errorMessage !== undefined) patch.error_message = u.errorMessage;
  if (Object.keys(patch).length === 0) return;
  await db('build_steps').where({ drv_path: drvPath }).whereIn('status', ['pending', 'running']).update(patch);
}

/**
 * Marks a derivation's step rows queued, but not rows already building: with batches (issue 6) Nix may
 * be building a derivation along with a dependent's batch before the derivation's own request queues.
 */
export async function markStepsQueued(db: Queryable, drvPath: string): Promise<void> {
  await db('build_steps')
    .where({ drv_path: drvPath })
    .whereIn('status', ['pending', 'running'])
    .whereRaw("not (status = 'running' and phase is not distinct from 'building')")
    .update({ phase: 'queued', builder_id: null });
}

export async function insertPlannedSteps(db: Queryable, buildId: string, drvPaths: string[]): Promise<void> {
  await db('build_steps').where({ build_id: buildId }).delete();
  if (drvPaths.length === 0) return;
  for (let i = 0; i < drvPaths.length; i += 500) {
    await db('build_steps').insert(
      drvPaths.slice(i, i + 500).map((drv, j) => ({ build_id: buildId, step_number: i + j + 1, drv_path: drv, status: 'pending' })),
    );
  }
  await takeStateOfRunningRows(db, buildId, drvPaths);
}

/**
 * A derivation this build shares with another build may be building already: its realisation marked the
 * step rows that existed then, so the build's new rows take the state of a running row of the same derivation.
 */
async function takeStateOfRunningRows(db: Queryable, buildId: string, drvPaths: string[]): Promise<void> {
  await db.raw(
    `update build_steps s
        set status = r.status, phase = r.phase, builder_id = r.builder_id, started_at = r.started_at
       from (select distinct on (drv_path) drv_path, status, phase, builder_id, started_at
               from build_steps
              where drv_path = any(?) and status = 'running' and build_id <> ?
              order by drv_path, started_at desc nulls last) r
      where s.build_id = ? and s.drv_path = r.drv_path and s.status = 'pending'`,
    [drvPaths, buildId, buildId],
  );
}

/**
 * Records steps where they are run (issue 6): each derivation to build gets one row, in the build that
 * runs it (the build of that job, or the build whose derivation first needed it), as Hydra records a shared
 * step once; a build that already holds a row of the derivation keeps it (a restart deletes the rows first). New rows follow the
 * build's last step number and take the state of a running row of the same derivation. Each build's rows
 * are written under an advisory lock of that build (builds in order), so concurrent planners neither
 * repeat a row nor take the same step number.
 */
export async function recordSteps(db: Db, steps: Array<{ buildId: string; drvPath: string }>): Promise<void> {
  const byBuild = new Map<string, string[]>();
  for (const s of steps) {
    const list = byBuild.get(s.buildId) ?? [];
    if (!list.includes(s.drvPath)) list.push(s.drvPath);
    byBuild.set(s.buildId, list);
  }
  if (byBuild.size === 0) return;
  await db.transaction(async (trx) => {
    for (const buildId of [...byBuild.keys()].sort()) {
      const drvPaths = byBuild.get(buildId)!;
      await trx.raw('select pg_advisory_xact_lock(hashtextextended(?, 0))', [`build_steps:${buildId}`]);
      const held = new Set<string>(await trx('build_steps').where({ build_id: buildId }).whereIn('drv_path', drvPaths).pluck('drv_path'));
      const fresh = drvPaths.filter((d) => !held.has(d));
      if (fresh.length === 0) continue;
      const last = await trx('build_steps').where({ build_id: buildId }).max<{ max: number | null }>('step_number as max').first();
      await trx('build_steps').insert(fresh.map((drv, i) => ({ build_id: buildId, step_number: (last?.max ?? 0) + i + 1, drv_path: drv, status: 'pending' })));
      await takeStateOfRunningRows(trx, buildId, fresh);
    }
  });
}

/** Steps that never ran when the build ended (a dependency failed, or it was cancelled). */
export async function closeUnfinishedSteps(db: Queryable, buildIds: string[], status: string): Promise<void> {
  if (buildIds.length === 0) return;
  await db('build_steps')
    .whereIn('build_id', buildIds)
    .whereIn('status', ['pending', 'running'])
    .update({ status, completed_at: db.fn.now(), phase: null });
}

/**
 * The step rows of a batch's extras, in one statement before its Nix starts (issue 6): each extra's own
 * unfinished build (the newest, as `logBuildOfStep` picks it) that has no step row yet gets its first,
 * pending. So the held builds show their step while they wait, and `logBuildOfStep` finds each row at
 * once instead of recording it (about eight statements each). A build that has rows already is left to
 * `logBuildOfStep`; a row recorded meanwhile by the build's own start wins (no second step 1).
 * Answers the build of each row it recorded, by derivation: that build gets the derivation's log, as
 * `logBuildOfStep` would answer, without asking it.
 */
export async function recordStepsOfExtras(db: Queryable, drvPaths: string[]): Promise<Map<string, string>> {
  if (drvPaths.length === 0) return new Map();
  const { rows } = await db.raw(
    `insert into build_steps (build_id, step_number, drv_path, status)
     select distinct on (b.drv_path) b.id, 1, b.drv_path, 'pending'
       from builds b
      where b.drv_path = any(?) and b.status = any(?)
        and not exists (select 1 from build_steps s where s.build_id = b.id)
      order by b.drv_path, b.created_at desc
     on conflict (build_id, step_number) do nothing
     returning build_id, drv_path`,
    [drvPaths, [...ACTIVE_BUILD_STATUSES]],
  );
  return new Map((rows as Array<{ build_id: string; drv_path: string }>).map((r) => [r.drv_path, r.build_id]));
}

/**
 * The build whose log receives the log of a derivation that a batch built without its own request (an
 * input Nix built along with a member): the build of that derivation itself if it is one, else a build
 * waiting on it as a step. When no unfinished build has it as a step yet (its planner had not run), the
 * step is recorded in the derivation's own unfinished build if it is a job, else in `fallbackBuildId` (the
 * build of a member that needs it), which gets its log.
 */
export async function logBuildOfStep(db: Db, drvPath: string, fallbackBuildId?: string): Promise<string | undefined> {
  const row = await db('build_steps as s')
    .join('builds as b', 'b.id', 's.build_id')
    .where('s.drv_path', drvPath)
    .whereIn('s.status', ['pending', 'running'])
    .orderByRaw('(b.drv_path = s.drv_path) desc')
    .first<{ build_id: string } | undefined>('s.build_id');
  if (row || !fallbackBuildId) return row?.build_id;
  // The derivation's own unfinished build, if it is a job, records it (its start finds the row held); else the member's.
  const own = await db('builds').where({ drv_path: drvPath }).whereIn('status', ACTIVE_BUILD_STATUSES).orderBy('created_at', 'desc').first<{ id: string } | undefined>('id');
  const buildId = own?.id ?? fallbackBuildId;
  await recordSteps(db, [{ buildId, drvPath }]);
  return buildId;
}
