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

export async function insertPlannedSteps(db: Queryable, buildId: string, drvPaths: string[]): Promise<void> {
  await db('build_steps').where({ build_id: buildId }).delete();
  if (drvPaths.length === 0) return;
  for (let i = 0; i < drvPaths.length; i += 500) {
    await db('build_steps').insert(
      drvPaths.slice(i, i + 500).map((drv, j) => ({ build_id: buildId, step_number: i + j + 1, drv_path: drv, status: 'pending' })),
    );
  }
}

/** Steps that never ran when the build ended (a dependency failed, or it was cancelled). */
export async function closeUnfinishedSteps(db: Queryable, buildId: string, status: string): Promise<void> {
  await db('build_steps').where({ build_id: buildId }).whereIn('status', ['pending', 'running']).update({ status, completed_at: db.fn.now(), phase: null });
}
