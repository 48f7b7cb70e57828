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

export async function recordCachedFailure(db: Queryable, failure: { drvPath: string; status: string; errorMessage: string | null }): Promise<void> {
  await db('cached_failures')
    .insert({ drv_path: failure.drvPath, status: failure.status, error_message: failure.errorMessage })
    .onConflict('drv_path')
    .merge();
}

/** A restart builds the derivation again instead of answering the cached failure. */
export async function forgetCachedFailure(db: Queryable, drvPath: string): Promise<void> {
  await db('cached_failures').where({ drv_path: drvPath }).delete();
}
