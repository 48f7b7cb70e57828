import type { Queryable } from '../../lib/db';

/** A derivation that failed before: its builds fail at once (Hydra's cached failure) until someone restarts one. */
export interface CachedFailure {
  drv_path: string;
  status: string;
  error_message: string | null;
}

export async function findCachedFailure(db: Queryable, drvPath: string): Promise<CachedFailure | undefined> {
  return db('cached_failures').where({ drv_path: drvPath }).first('drv_path', 'status', 'error_message');
}

/** The cached failures among `drvPaths`. */
export async function cachedFailuresAmong(db: Queryable, drvPaths: string[]): Promise<CachedFailure[]> {
  if (drvPaths.length === 0) return [];
  return db('cached_failures').whereIn('drv_path', drvPaths).select('drv_path', 'status', 'error_message');
}

/**
 * The derivation's cached failure as a build sees it: `decidedAfterBuild` when it was recorded after the
 * build was created (the build was waiting for that very failure, not queued onto one known before).
 */
export async function findCachedFailureFor(db: Queryable, drvPath: string, buildId: string): Promise<(CachedFailure & { decidedAfterBuild: boolean }) | undefined> {
  const row = await db('cached_failures as f')
    .leftJoin('builds as b', 'b.id', db.raw('?::uuid', [buildId]))
    .where('f.drv_path', drvPath)
    .first<(CachedFailure & { decided_after_build: boolean }) | undefined>('f.drv_path', 'f.status', 'f.error_message', db.raw('coalesce(f.created_at >= b.created_at, false) as decided_after_build'));
  return row && { drv_path: row.drv_path, status: row.status, error_message: row.error_message, decidedAfterBuild: row.decided_after_build };
}

export async function recordCachedFailure(db: Queryable, failure: { drvPath: string; status: string; errorMessage: string | null }): Promise<void> {
  await db('cached_failures')
    .insert({ drv_path: failure.drvPath, status: failure.status, error_message: failure.errorMessage, created_at: db.fn.now() })
    .onConflict('drv_path')
    // Failing again is a new decision: the builds waiting on this run take it as their own (`resultAsBuildSees`).
    .merge(['status', 'error_message', 'created_at']);
}

/** A restart builds the derivation again instead of answering the cached failure. */
export async function forgetCachedFailure(db: Queryable, drvPath: string): Promise<void> {
  await db('cached_failures').where({ drv_path: drvPath }).delete();
}

/**
 * What a build's `cached_failure` result means for that build (Hydra fails the builds queued on a step
 * when it fails): its own failure, with the step's status, when the failure was decided after the build
 * was created (the build waited for it, and only heard of it late: it attached while the derivation's
 * workflow was telling its waiters, or after that workflow closed); a cached failure otherwise. Other
 * results are unchanged.
 */
export async function resultAsBuildSees(
  db: Queryable,
  buildId: string,
  drvPath: string | null | undefined,
  result: { status: string; errorMessage: string | null },
): Promise<{ status: string; errorMessage: string | null }> {
  if (result.status !== 'cached_failure' || !drvPath) return result;
  const cached = await findCachedFailureFor(db, drvPath, buildId);
  return (cached && ownFailureOf(cached)) ?? result;
}

/** The statuses of a derivation's own failure, which a build waiting on it takes as its own. */
export type OwnFailureStatus = 'failed' | 'timeout' | 'log_limit_exceeded';

/**
 * A cached failure as the build it was found for sees it: that build's own failure (status and message)
 * when the failure was decided after the build was created, and the step itself failed; undefined when
 * it is a cached failure for that build.
 */
export function ownFailureOf(cached: CachedFailure & { decidedAfterBuild: boolean }): { status: OwnFailureStatus; errorMessage: string | null } | undefined {
  if (!cached.decidedAfterBuild) return undefined;
  const status = cached.status;
  if (status !== 'failed' && status !== 'timeout' && status !== 'log_limit_exceeded') return undefined;
  return { status, errorMessage: cached.error_message };
}
