import type { Db } from '../../lib/db';

/** Builds of one (system, status), from the summary that triggers on builds keep (build_count_deltas). */
export interface BuildCount {
  system: string;
  status: string;
  builds: number;
  /** Builds with a start and an end (a known duration). */
  timed: number;
  duration_seconds: number;
}

/** Past this many delta rows, a reader folds them into one row per (system, status). */
const COMPACT_ABOVE_ROWS = 1000;

/**
 * Builds counted by system and status: a sum over a small table, whatever the number of builds. The triggers
 * only append deltas (no counter row is locked by two writers); this reader folds them when they pile up.
 */
export async function buildCountsBySystemAndStatus(db: Db): Promise<BuildCount[]> {
  const r = await db.raw(`
    SELECT system, status, sum(builds)::float8 AS builds, sum(timed)::float8 AS timed,
           sum(duration_seconds)::float8 AS duration_seconds, sum(1)::int AS delta_rows
    FROM build_count_deltas GROUP BY system, status`);
  const rows = r.rows as Array<BuildCount & { delta_rows: number }>;
  const deltaRows = rows.reduce((n, row) => n + row.delta_rows, 0);
  if (deltaRows > COMPACT_ABOVE_ROWS) await compactBuildCounts(db);
  return rows
    .filter((row) => row.builds !== 0)
    .map(({ system, status, builds, timed, duration_seconds }) => ({ system, status, builds, timed, duration_seconds }));
}

/**
 * Folds the deltas into one row per (system, status), in one statement: rows a concurrent compaction already
 * took are skipped, and rows appended meanwhile stay for the next time.
 */
export async function compactBuildCounts(db: Db): Promise<void> {
  await db.raw(`
    WITH taken AS (DELETE FROM build_count_deltas RETURNING *)
    INSERT INTO build_count_deltas (system, status, builds, timed, duration_seconds)
    SELECT system, status, sum(builds), sum(timed), sum(duration_seconds) FROM taken
    GROUP BY system, status HAVING sum(builds) <> 0 OR sum(timed) <> 0`);
}

/** The build counts of the admin system status (COMPAT.md's System status). */
export function buildCountsForSystemStatus(counts: BuildCount[]): Record<'builds_pending' | 'builds_running' | 'builds_completed' | 'builds_failed', number> {
  const of = (statuses: string[], not = false) => counts.filter((c) => statuses.includes(c.status) !== not).reduce((n, c) => n + c.builds, 0);
  return {
    builds_pending: of(['pending']),
    builds_running: of(['running']),
    builds_completed: of(['succeeded']),
    builds_failed: of(['pending', 'running', 'succeeded'], true),
  };
}
