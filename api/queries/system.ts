import type { Db } from '../../lib/db';
import { buildCountsBySystemAndStatus, buildCountsForSystemStatus } from './build-counts';

/** The read model's counts that GET /api/v1/admin/system reports. */
export interface SystemCounts {
  projects_count: number;
  jobsets_count: number;
  evaluations_count: number;
  builds_pending: number;
  builds_running: number;
  builds_completed: number;
  /** Every build that ended other than succeeded (aborted and cancelled included). */
  builds_failed: number;
  channels_count: number;
}

export async function systemCounts(db: Db): Promise<SystemCounts> {
  const count = async (table: string, where?: (q: ReturnType<Db>) => void): Promise<number> => {
    const q = db(table);
    where?.(q);
    const row = (await q.count<{ n: string }[]>('* as n'))[0];
    return Number(row.n);
  };
  return {
    projects_count: await count('projects'),
    jobsets_count: await count('jobsets'),
    evaluations_count: await count('evaluations'),
    // Builds from the maintained summary: no scan of builds.
    ...buildCountsForSystemStatus(await buildCountsBySystemAndStatus(db)),
    channels_count: await count('channels'),
  };
}

/** PostgreSQL's version string (`SHOW server_version`). */
export async function databaseServerVersion(db: Db): Promise<string> {
  return ((await db.raw('show server_version')).rows[0] as { server_version: string }).server_version;
}
