import type { BuildRow, Db } from '../../lib/db';
import { FAILED_BUILD_STATUSES } from '../../lib/statuses';

/** The read model of the build queue that the dashboard shows: what waits, what runs, what fails now. */

export interface QueueOfSystem {
  system: string;
  /** Queued builds, counted up to QUEUE_COUNT_CAP (a count at the cap means "at least"). */
  queued: number;
  running: number;
}

/** How far queueBySystem counts each system's queued and running builds: the home page says "1,000+" beyond. */
export const QUEUE_COUNT_CAP = 1000;

/**
 * Queued (pending) and running builds per system, each counted up to `cap`: the systems by a skip scan of the
 * partial index of active builds (one probe per system), then at most `cap` index entries per system and status.
 * Counting every active build read all of them on every view (50,000 entries at a million builds: 26 ms).
 */
export async function queueBySystem(db: Db, cap = QUEUE_COUNT_CAP): Promise<QueueOfSystem[]> {
  const r = await db.raw(
    `WITH RECURSIVE systems AS (
       (SELECT system FROM builds WHERE status IN ('pending', 'running') ORDER BY system LIMIT 1)
       UNION ALL
       SELECT (SELECT b.system FROM builds b WHERE b.status IN ('pending', 'running') AND b.system > s.system ORDER BY b.system LIMIT 1)
       FROM systems s WHERE s.system IS NOT NULL
     )
     SELECT s.system,
            (SELECT count(*) FROM (SELECT 1 FROM builds b WHERE b.status = 'pending' AND b.system = s.system LIMIT ?) q)::int AS queued,
            (SELECT count(*) FROM (SELECT 1 FROM builds b WHERE b.status = 'running' AND b.system = s.system LIMIT ?) q)::int AS running
     FROM systems s WHERE s.system IS NOT NULL ORDER BY s.system`,
    [cap, cap],
  );
  return (r.rows as QueueOfSystem[]).sort((a, b) => a.system.localeCompare(b.system));
}

/** What a list of builds on a page shows of each (BuildTable): not the whole row. */
export type BuildListEntry = Pick<BuildRow, 'id' | 'job_name' | 'system' | 'status' | 'priority' | 'created_at'>;
const BUILD_LIST_COLUMNS = ['id', 'job_name', 'system', 'status', 'priority', 'created_at'] as const;

/** Running builds, oldest start first, one page at a time. */
export async function runningBuilds(db: Db, page: { limit: number; offset: number }): Promise<BuildListEntry[]> {
  return db('builds')
    .select(...BUILD_LIST_COLUMNS)
    .where('status', 'running')
    .orderBy([{ column: 'created_at' }, { column: 'id' }])
    .limit(page.limit)
    .offset(page.offset);
}

/** Queued builds in the order the dispatcher takes them: priority, then age. */
export async function queuedBuilds(db: Db, page: { limit: number; offset: number; system?: string }): Promise<BuildRow[]> {
  const q = db('builds').select('*').where('status', 'pending');
  if (page.system) q.where('system', page.system);
  return q
    .orderBy([{ column: 'priority', order: 'desc' }, { column: 'created_at' }, { column: 'id' }])
    .limit(page.limit)
    .offset(page.offset);
}

/**
 * Running builds per builder (null: the worker's own Nix or an agent without a builder row), each counted up to
 * `cap` (QUEUE_COUNT_CAP: a count at the cap means "at least"; a builder's slots are far fewer). The builders by a
 * skip scan of the partial index of running builds (one probe each), then at most `cap` entries per builder:
 * grouping read every running build on every view of home, builders and why a build waits.
 */
export async function runningBuildsPerBuilder(db: Db, cap = QUEUE_COUNT_CAP): Promise<Map<string | null, number>> {
  const r = await db.raw(
    `WITH RECURSIVE ids AS (
       (SELECT builder_id FROM builds WHERE status = 'running' AND builder_id IS NOT NULL ORDER BY builder_id LIMIT 1)
       UNION ALL
       SELECT (SELECT b.builder_id FROM builds b WHERE b.status = 'running' AND b.builder_id > i.builder_id ORDER BY b.builder_id LIMIT 1)
       FROM ids i WHERE i.builder_id IS NOT NULL
     )
     SELECT i.builder_id, (SELECT count(*) FROM (SELECT 1 FROM builds b WHERE b.status = 'running' AND b.builder_id = i.builder_id LIMIT ?) q)::int AS count
     FROM ids i WHERE i.builder_id IS NOT NULL
     UNION ALL
     SELECT NULL, (SELECT count(*) FROM (SELECT 1 FROM builds b WHERE b.status = 'running' AND b.builder_id IS NULL LIMIT ?) q)::int`,
    [cap, cap],
  );
  return new Map((r.rows as Array<{ builder_id: string | null; count: number }>).filter((row) => row.count > 0).map((row) => [row.builder_id, row.count]));
}

/** How many queued builds of the same system go before this one (higher priority, or as high and older); counted up to `cap`. */
export async function queuedAheadOf(db: Db, build: Pick<BuildRow, 'id' | 'system' | 'priority' | 'created_at'>, cap = 1000): Promise<number> {
  const ahead = db('builds')
    .select(db.raw('1'))
    .where({ status: 'pending', system: build.system })
    .whereNot('id', build.id)
    .andWhere((q) => q.where('priority', '>', build.priority).orWhere((q2) => q2.where('priority', build.priority).andWhere('created_at', '<', build.created_at)))
    .limit(cap);
  const [{ count }] = (await db.from(ahead.as('ahead')).count<{ count: string }[]>('* as count')) as { count: string }[];
  return Number(count);
}

/** The failed statuses as SQL literals (constants): a partial index's predicate is matched against them in any plan. */
const FAILED_STATUS_LIST = FAILED_BUILD_STATUSES.map((s) => `'${s}'`).join(', ');

/**
 * Jobs failing now: the failed builds of the newest evaluation of each jobset, newest first.
 */
export async function failingJobsNow(db: Db, page: { limit: number; offset: number }): Promise<BuildListEntry[]> {
  // Per jobset: its newest evaluation (one probe of (jobset_id, created_at, id)), then that evaluation's newest
  // failed builds from the partial index builds_failed_by_evaluation (index-only, at most limit + offset each);
  // the page is chosen among those keys, and only its rows are read. Bounded whatever the data: the old
  // "evaluation_id IN (newest of each jobset)" walked all builds newest first until it found a page of them.
  const r = await db.raw(
    `WITH top AS (
       SELECT f.created_at, f.id
       FROM jobsets j
       CROSS JOIN LATERAL (SELECT e.id FROM evaluations e WHERE e.jobset_id = j.id ORDER BY e.created_at DESC, e.id DESC LIMIT 1) ne
       CROSS JOIN LATERAL (SELECT f.created_at, f.id FROM builds f
                           WHERE f.evaluation_id = ne.id AND f.status IN (${FAILED_STATUS_LIST})
                           ORDER BY f.created_at DESC, f.id DESC LIMIT ?) f
       ORDER BY f.created_at DESC, f.id DESC LIMIT ? OFFSET ?
     )
     SELECT ${BUILD_LIST_COLUMNS.map((c) => `b.${c}`).join(', ')} FROM top JOIN builds b ON b.id = top.id ORDER BY top.created_at DESC, top.id DESC`,
    [page.limit + page.offset, page.limit, page.offset],
  );
  return r.rows as BuildListEntry[];
}

/** The newest evaluations of all jobsets, with their jobset's and project's names. */
export async function recentEvaluations(db: Db, page: { limit: number; offset: number; jobsetId?: string }) {
  const q = db('evaluations')
    .join('jobsets', 'jobsets.id', 'evaluations.jobset_id')
    .join('projects', 'projects.id', 'jobsets.project_id')
    .select('evaluations.*', 'jobsets.name as jobset_name', 'projects.name as project_name', 'projects.id as project_id')
    .where('evaluations.hidden', false);
  if (page.jobsetId) q.where('evaluations.jobset_id', page.jobsetId);
  return q
    .orderBy([{ column: 'evaluations.created_at', order: 'desc' }, { column: 'evaluations.id', order: 'desc' }])
    .limit(page.limit)
    .offset(page.offset) as Promise<Array<Record<string, any> & { id: string; status: string; created_at: Date; jobset_name: string; project_name: string; project_id: string }>>;
}
