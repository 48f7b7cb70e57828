import type { Queryable } from '../../lib/db';

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
  // A derivation this build shares with another build may be building already: its realisation marked the
  // step rows that existed then, so the new rows take the state of a running row of the same derivation.
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

/** Steps that never ran when the build ended (a dependency failed, or it was cancelled). */
export async function closeUnfinishedSteps(db: Queryable, buildId: string, status: string): Promise<void> {
  await db('build_steps').where({ build_id: buildId }).whereIn('status', ['pending', 'running']).update({ status, completed_at: db.fn.now(), phase: null });
}

/**
 * The build whose log receives the log of a derivation that a batch built without its own request (an
 * input Nix built along with a member): the build of that derivation itself if it is one, else a build
 * waiting on it as a step; undefined when no unfinished build has it as a step.
 */
export async function logBuildOfStep(db: Queryable, drvPath: string): Promise<string | undefined> {
  const row = await db('build_steps as s')
    .join('builds as b', 'b.id', 's.build_id')
    .where('s.drv_path', drvPath)
    .whereIn('s.status', ['pending', 'running'])
    .orderByRaw('(b.drv_path = s.drv_path) desc')
    .first<{ build_id: string } | undefined>('s.build_id');
  return row?.build_id;
}
