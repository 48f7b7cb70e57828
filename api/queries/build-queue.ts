import type { BuildRow, Db } from '../../lib/db';
import { FAILED_BUILD_STATUSES } from '../../lib/statuses';

/** The read model of the build queue that the dashboard shows: what waits, what runs, what fails now. */

export interface QueueOfSystem {
  system: string;
  queued: number;
  running: number;
}

/** Queued (pending) and running builds per system; answered from the (status, created_at) index. */
export async function queueBySystem(db: Db): Promise<QueueOfSystem[]> {
  const rows = (await db('builds')
    .select('system', 'status')
    .count<{ system: string; status: string; count: string }[]>('* as count')
    .whereIn('status', ['pending', 'running'])
    .groupBy('system', 'status')) as { system: string; status: string; count: string }[];
  const bySystem = new Map<string, QueueOfSystem>();
  for (const r of rows) {
    const entry = bySystem.get(r.system) ?? { system: r.system, queued: 0, running: 0 };
    if (r.status === 'pending') entry.queued += Number(r.count);
    else entry.running += Number(r.count);
    bySystem.set(r.system, entry);
  }
  return [...bySystem.values()].sort((a, b) => a.system.localeCompare(b.system));
}

/** Running builds, oldest start first, one page at a time. */
export async function runningBuilds(db: Db, page: { limit: number; offset: number }): Promise<BuildRow[]> {
  return db('builds')
    .select('*')
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

/** Running builds per builder (null: the worker's own Nix or an agent without a builder row). */
export async function runningBuildsPerBuilder(db: Db): Promise<Map<string | null, number>> {
  const rows = (await db('builds').select('builder_id').count<{ builder_id: string | null; count: string }[]>('* as count').where('status', 'running').groupBy('builder_id')) as {
    builder_id: string | null;
    count: string;
  }[];
  return new Map(rows.map((r) => [r.builder_id, Number(r.count)]));
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

/**
 * Jobs failing now: the failed builds of the newest evaluation of each jobset, newest first.
 */
export async function failingJobsNow(db: Db, page: { limit: number; offset: number }): Promise<BuildRow[]> {
  // One probe of the (jobset_id, created_at) index per jobset, then the partial index of failed builds.
  const newestEvaluations = db('jobsets').select(
    db.raw('(select e.id from evaluations e where e.jobset_id = jobsets.id order by e.created_at desc, e.id desc limit 1)'),
  );
  return db('builds')
    .select('*')
    .whereIn('evaluation_id', newestEvaluations)
    .whereIn('status', FAILED_BUILD_STATUSES as string[])
    .orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }])
    .limit(page.limit)
    .offset(page.offset);
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
