import type { Knex } from 'knex';
import type { BuildRow, Db } from '../../lib/db';
import { BUILD_STATUSES, FAILED_BUILD_STATUSES, isFinishedBuildStatus, type BuildStatus } from '../../lib/statuses';
import { boundedPageRows } from './bounded-page';
import { buildCountsBySystemAndStatus } from './build-counts';
import { BUILD_OUTPUTS_SQL } from './build-page-json';

// The vocabulary is defined in lib/statuses.ts, the row type in lib/db.ts; re-exported for the modules that list builds.
export { BUILD_STATUSES, FAILED_BUILD_STATUSES, type BuildStatus, type BuildRow };

/** A build as the API answers it (COMPAT.md's Build): the row, its outputs by name and its constituents' IDs. */
export interface BuildView extends Omit<BuildRow, 'outputs'> {
  outputs: Record<string, string>;
  /** IDs of the constituent builds of an aggregate (empty for other builds). */
  constituents: string[];
}

/** The API shape of many builds, with two batched queries whatever their number. */
export async function buildViews(db: Db, rows: BuildRow[]): Promise<BuildView[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const aggregateIds = rows.filter((r) => r.is_aggregate).map((r) => r.id);
  const [outputRows, constituentRows] = await Promise.all([
    db('build_outputs').select('build_id', 'name', 'path').whereIn('build_id', ids).orderBy('name'),
    aggregateIds.length === 0
      ? Promise.resolve([] as { aggregate_build_id: string; constituent_build_id: string }[])
      : db('aggregate_constituents')
          .join('builds', 'builds.id', 'aggregate_constituents.constituent_build_id')
          .select('aggregate_constituents.aggregate_build_id', 'aggregate_constituents.constituent_build_id')
          .whereIn('aggregate_constituents.aggregate_build_id', aggregateIds)
          .orderBy([{ column: 'builds.job_name' }, { column: 'builds.id' }]),
  ]);
  const outputsOf = new Map<string, Record<string, string>>();
  for (const o of outputRows as { build_id: string; name: string; path: string }[]) {
    const m = outputsOf.get(o.build_id) ?? {};
    m[o.name] = o.path;
    outputsOf.set(o.build_id, m);
  }
  const constituentsOf = new Map<string, string[]>();
  for (const c of constituentRows) {
    const list = constituentsOf.get(c.aggregate_build_id) ?? [];
    list.push(c.constituent_build_id);
    constituentsOf.set(c.aggregate_build_id, list);
  }
  return rows.map((row) => ({
    ...row,
    outputs: { ...(row.outputs ?? {}), ...(outputsOf.get(row.id) ?? {}) },
    constituents: constituentsOf.get(row.id) ?? [],
  }));
}

/** The API shape of one build (the Build of COMPAT.md, plus project_id, jobset_id and workflow_id). */
export async function buildView(db: Db, row: BuildRow): Promise<BuildView> {
  const [view] = await buildViews(db, [row]);
  return view;
}

export async function findBuild(db: Db, id: string): Promise<BuildRow | undefined> {
  return db('builds').where({ id }).first();
}

export interface BuildFilter {
  evaluation_id?: string;
  status?: BuildStatus;
  system?: string;
  job_name?: string;
  project_id?: string;
  jobset_id?: string;
  limit: number;
  offset: number;
  /** next_cursor of a page: the builds after it. */
  cursor?: string;
}

const NEWEST_FIRST = [{ column: 'created_at', order: 'desc' as const }, { column: 'id', order: 'desc' as const }];

/** The builds a list filter matches, unordered and unpaged; every value is a binding. */
export function filteredBuilds(db: Db, f: Omit<BuildFilter, 'limit' | 'offset'>): { query: Knex.QueryBuilder; unfiltered: boolean } {
  const query = db('builds');
  let unfiltered = true;
  for (const key of ['evaluation_id', 'status', 'system', 'job_name', 'project_id', 'jobset_id'] as const) {
    if (f[key] === undefined) continue;
    query.where(`builds.${key}`, f[key]);
    unfiltered = false;
  }
  return { query, unfiltered };
}

export async function pageBuilds(db: Db, f: BuildFilter) {
  const { query, unfiltered } = filteredBuilds(db, f);
  const { rows, ...page } = await boundedPageRows<BuildRow>(db, query, f, NEWEST_FIRST, { table: 'builds', unfiltered });
  return { items: await buildViews(db, rows), ...page };
}

/** The most recently completed (or, when not completed, created) builds. */
export async function recentBuilds(db: Db, limit: number): Promise<BuildView[]> {
  const rows = (await db('builds')
    .select('*')
    .orderByRaw('coalesce(completed_at, created_at) desc, id desc')
    .limit(limit)) as BuildRow[];
  return buildViews(db, rows);
}

export async function projectBuilds(db: Db, projectId: string, limit: number, offset: number): Promise<BuildView[]> {
  // The page's keys first (an index-only walk, cheap far from the start), then only its rows.
  const keys = db('builds').select('created_at', 'id').where({ project_id: projectId }).orderBy(NEWEST_FIRST).limit(limit).offset(offset);
  const rows = (await db
    .select('builds.*')
    .from(keys.as('page'))
    .join('builds', 'builds.id', 'page.id')
    .orderBy(NEWEST_FIRST.map((o) => ({ ...o, column: `page.${o.column}` })))) as BuildRow[];
  return buildViews(db, rows);
}

export interface BuildStats {
  total: number;
  by_status: Record<BuildStatus, number>;
  queue_depth: number;
  pending: number;
  running: number;
  succeeded: number;
  /** Builds in any failed status (FAILED_BUILD_STATUSES). */
  failed: number;
  cancelled: number;
  aborted: number;
  avg_duration_seconds: number | null;
  // circus's names
  total_builds: number;
  completed_builds: number;
  failed_builds: number;
  running_builds: number;
  pending_builds: number;
}

/** Counts from the maintained summary (build_count_deltas), not a scan of builds. */
export async function buildStats(db: Db): Promise<BuildStats> {
  const counts = await buildCountsBySystemAndStatus(db);
  const by_status = Object.fromEntries(BUILD_STATUSES.map((s) => [s, 0])) as Record<BuildStatus, number>;
  let total = 0;
  let timed = 0;
  let durationSeconds = 0;
  for (const c of counts) {
    total += c.builds;
    timed += c.timed;
    durationSeconds += c.duration_seconds;
    if (c.status in by_status) by_status[c.status as BuildStatus] += c.builds;
  }
  const avg = { avg: timed > 0 ? durationSeconds / timed : null };
  const failed = FAILED_BUILD_STATUSES.reduce((sum, s) => sum + by_status[s], 0);
  return {
    total,
    by_status,
    queue_depth: by_status.pending,
    pending: by_status.pending,
    running: by_status.running,
    succeeded: by_status.succeeded,
    failed,
    cancelled: by_status.cancelled,
    aborted: by_status.aborted,
    avg_duration_seconds: avg?.avg ?? null,
    total_builds: total,
    completed_builds: by_status.succeeded,
    failed_builds: failed,
    running_builds: by_status.running,
    pending_builds: by_status.pending,
  };
}

/** The builds this build depends on. */
export async function listDependencies(db: Db, buildId: string): Promise<BuildView[]> {
  const rows = (await db('builds')
    .select('builds.*')
    .join('build_dependencies', 'build_dependencies.dependency_build_id', 'builds.id')
    .where('build_dependencies.build_id', buildId)
    .orderBy([{ column: 'builds.job_name' }, { column: 'builds.id' }])) as BuildRow[];
  return buildViews(db, rows);
}

/** The builds that depend on this build. */
export async function listDependents(db: Db, buildId: string): Promise<BuildView[]> {
  const rows = (await db('builds')
    .select('builds.*')
    .join('build_dependencies', 'build_dependencies.build_id', 'builds.id')
    .where('build_dependencies.dependency_build_id', buildId)
    .orderBy([{ column: 'builds.job_name' }, { column: 'builds.id' }])) as BuildRow[];
  return buildViews(db, rows);
}

export async function listConstituents(db: Db, aggregateBuildId: string): Promise<BuildView[]> {
  const rows = (await db('builds')
    .select('builds.*')
    .join('aggregate_constituents', 'aggregate_constituents.constituent_build_id', 'builds.id')
    .where('aggregate_constituents.aggregate_build_id', aggregateBuildId)
    .orderBy([{ column: 'builds.job_name' }, { column: 'builds.id' }])) as BuildRow[];
  return buildViews(db, rows);
}

export interface BuildStepRow {
  id: string;
  build_id: string;
  step_number: number;
  drv_path: string;
  builder_id: string | null;
  machine: string | null;
  status: string;
  phase: string | null;
  started_at: Date | null;
  completed_at: Date | null;
  exit_code: number | null;
  error_message: string | null;
}

export async function listBuildSteps(db: Db, buildId: string): Promise<BuildStepRow[]> {
  return db('build_steps').select('*').where({ build_id: buildId }).orderBy('step_number');
}

export interface BuildProductRow {
  id: string;
  build_id: string;
  product_type: string | null;
  subtype: string | null;
  name: string;
  path: string;
  sha256_hash: string | null;
  file_size: number | null;
  content_type: string | null;
  is_directory: boolean;
  gc_root_path: string | null;
  created_at: Date;
}

export async function listBuildProducts(db: Db, buildId: string): Promise<BuildProductRow[]> {
  return db('build_products').select('*').where({ build_id: buildId }).orderBy([{ column: 'created_at' }, { column: 'name' }, { column: 'id' }]);
}

export async function findBuildProduct(db: Db, buildId: string, productId: string): Promise<BuildProductRow | undefined> {
  return db('build_products').where({ id: productId, build_id: buildId }).first();
}

/** Every store path the build produced: its outputs (jsonb and build_outputs) and build_output_path. */
export async function buildOutputPaths(db: Db, row: BuildRow): Promise<string[]> {
  const view = await buildView(db, row);
  const paths = new Set<string>(Object.values(view.outputs).filter((p): p is string => typeof p === 'string' && p.length > 0));
  if (row.build_output_path) paths.add(row.build_output_path);
  return [...paths];
}

export async function setBuildKeep(db: Db, id: string, keep: boolean): Promise<BuildRow | undefined> {
  const [row] = await db('builds').where({ id }).update({ keep, updated_at: db.fn.now() }).returning('*');
  return row as BuildRow | undefined;
}

/** Whether a build has ended (its log will not grow); true for an unknown build too. */
export async function isBuildFinished(db: Db, id: string): Promise<boolean> {
  const row = (await db('builds').select('status').where({ id }).first()) as { status: string } | undefined;
  return !row || isFinishedBuildStatus(row.status);
}

/** A build with its outputs merged (as buildView does), and its jobset's and project's names: the build page's head, in one query. */
export interface BuildWithNames extends BuildView {
  jobset_name: string;
  project_name: string;
}

export async function findBuildWithNames(db: Db, id: string): Promise<BuildWithNames | undefined> {
  const r = await db.raw(
    `SELECT b.*, ${BUILD_OUTPUTS_SQL} AS merged_outputs, j.name AS jobset_name, p.name AS project_name
     FROM builds b JOIN jobsets j ON j.id = b.jobset_id JOIN projects p ON p.id = b.project_id
     WHERE b.id = ?`,
    [id],
  );
  const row = r.rows[0] as (BuildRow & { merged_outputs: Record<string, string>; jobset_name: string; project_name: string }) | undefined;
  if (!row) return undefined;
  const { merged_outputs, ...rest } = row;
  // The constituents' IDs are not shown on the page; buildViews has them for the API.
  return { ...rest, outputs: merged_outputs, constituents: [] };
}

/** The columns a list of builds shows (BuildTable's). */
export type BuildListRow = Pick<BuildRow, 'id' | 'job_name' | 'system' | 'status' | 'created_at'>;

/**
 * A bounded list of a build's dependencies (the builds it depends on) or dependents (the builds that depend on it),
 * by job name, with how many there are in all: one query, however many.
 */
export async function relatedBuilds(
  db: Db,
  buildId: string,
  relation: 'dependencies' | 'dependents',
  page: { limit: number; statuses?: readonly string[] },
): Promise<{ rows: BuildListRow[]; total: number }> {
  const [own, other] = relation === 'dependencies' ? ['build_id', 'dependency_build_id'] : ['dependency_build_id', 'build_id'];
  const q = db('build_dependencies as d')
    .join('builds as b', 'b.id', `d.${other}`)
    .where(`d.${own}`, buildId)
    .select('b.id', 'b.job_name', 'b.system', 'b.status', 'b.created_at', db.raw('count(*) OVER ()::int AS total'))
    .orderBy([{ column: 'b.job_name' }, { column: 'b.id' }])
    .limit(page.limit);
  if (page.statuses) q.whereIn('b.status', [...page.statuses]);
  const rows = (await q) as Array<BuildListRow & { total: number }>;
  return { rows: rows.map(({ total: _total, ...b }) => b), total: rows[0]?.total ?? 0 };
}

/** A page of an evaluation's builds by job name (the unique (evaluation_id, job_name) index: a walk of one page, however big the evaluation). */
export async function evaluationBuildRows(db: Db, evaluationId: string, page: { limit: number; offset: number }): Promise<BuildListRow[]> {
  return db('builds')
    .select('id', 'job_name', 'system', 'status', 'created_at')
    .where({ evaluation_id: evaluationId })
    .orderBy('job_name')
    .limit(page.limit)
    .offset(page.offset);
}
