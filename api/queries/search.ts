import type { Knex } from 'knex';
import type { Db } from '../../lib/db';
import { boundedPageRows, type BoundedCountOrder, type BoundedPageOfRows } from './bounded-page';
import { buildPageJson } from './build-page-json';
import type { BuildRow, BuildStatus } from './builds';

/** The Nix store directory, prepended to a store path given without it (a hash, or hash-name). */
export const STORE_DIR = '/nix/store/';

/** LIKE's wildcards (and its escape character) taken literally. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

const trigramByDb = new WeakMap<Db, Promise<boolean>>();

/** Whether pg_trgm is installed (the migration installs it when the server has it): substring or prefix search. */
export function hasTrigramSearch(db: Db): Promise<boolean> {
  let known = trigramByDb.get(db);
  if (!known) {
    known = db.raw(`SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'`).then((r) => r.rows.length > 0);
    trigramByDb.set(db, known);
  }
  return known;
}

/**
 * A name containing `text` (case-insensitive): a trigram-indexed ILIKE '%text%' with pg_trgm, else a
 * prefix match on the lower(name) text_pattern_ops index.
 */
function whereNameMatches(db: Db, query: Knex.QueryBuilder, column: string, text: string, trigram: boolean): void {
  if (trigram) query.where(column, 'ilike', `%${escapeLike(text)}%`);
  else query.where(db.raw('lower(??)', [column]), 'like', `${escapeLike(text.toLowerCase())}%`);
}

/** A store path as a prefix to look up: absolute as given, or under STORE_DIR. */
export function storePathPrefix(storePath: string): string {
  return storePath.startsWith('/') ? storePath : `${STORE_DIR}${storePath}`;
}

/** A query matching up to this many distinct job names is answered through them (see buildSearchQuery). */
const MAX_RESOLVED_JOB_NAMES = 500;

export interface BuildSearch {
  /** Part of the job name. */
  q?: string;
  job_name?: string;
  project_id?: string;
  /** A project's name. */
  project?: string;
  jobset_id?: string;
  /** A jobset's name (in any project unless project or project_id is given). */
  jobset?: string;
  status?: BuildStatus;
  system?: string;
  /** An output path or a .drv path, whole or a prefix of it (`/nix/store/<hash>`, or just the hash). */
  store_path?: string;
  /** Builds created at or after this time. */
  from?: string;
  /** Builds created before this time. */
  to?: string;
  limit: number;
  offset: number;
  /** next_cursor of a page: the builds after it. */
  cursor?: string;
}

/** The job names of the jobs table that contain `q`, up to MAX_RESOLVED_JOB_NAMES + 1 of them. */
async function jobNamesMatching(db: Db, q: string, trigram: boolean): Promise<string[]> {
  const matching = db('jobs').distinct('jobs.name').limit(MAX_RESOLVED_JOB_NAMES + 1);
  whereNameMatches(db, matching, 'jobs.name', q, trigram);
  return ((await matching) as Array<{ name: string }>).map((j) => j.name);
}

/**
 * The builds a search matches, unordered and unpaged; every value is a binding, never SQL text. `countOrder`
 * is the order in which a capped count walks them when the page's order would cost more (see BoundedCountOrder).
 */
export async function buildSearchQuery(db: Db, s: BuildSearch): Promise<{ query: Knex.QueryBuilder; unfiltered: boolean; countOrder?: BoundedCountOrder }> {
  const query = db('builds');
  let unfiltered = true;
  let countOrder: BoundedCountOrder | undefined;
  const filter = (apply: () => void) => {
    apply();
    unfiltered = false;
  };
  // Names resolved first, side by side: the builds are then filtered by their indexed columns.
  const trigram = s.q !== undefined ? await hasTrigramSearch(db) : false;
  const jobNames = s.q !== undefined ? await jobNamesMatching(db, s.q, trigram) : undefined;
  if (s.q !== undefined && jobNames) {
    // The job names that match, from the small jobs table; then the builds of those names by their btree index
    // (an index-only count, a page in created_at order). Too many names: match the builds' job names directly.
    if (jobNames.length <= MAX_RESOLVED_JOB_NAMES) {
      filter(() => query.whereIn('builds.job_name', jobNames));
      // Several names' builds are not one range of any index in created_at order: counted name by name instead
      // (the job_name index, index-only), not by walking all builds newest first.
      countOrder = [{ column: 'builds.job_name', order: 'asc' }];
    } else filter(() => whereNameMatches(db, query, 'builds.job_name', s.q!, trigram));
  }
  if (s.job_name !== undefined) filter(() => query.where('builds.job_name', s.job_name!));
  if (s.project_id !== undefined) filter(() => query.where('builds.project_id', s.project_id!));
  // A project's builds by its ID, found by the same statement (an InitPlan: one probe of the unique name index, no
  // round trip of its own): one range of the (project_id, …, created_at, id) indexes, in the page's order. An
  // unknown name is NULL, which matches no build.
  if (s.project !== undefined) filter(() => query.where('builds.project_id', db('projects').select('id').where('name', s.project!)));
  if (s.jobset_id !== undefined) filter(() => query.where('builds.jobset_id', s.jobset_id!));
  if (s.jobset !== undefined) filter(() => query.whereIn('builds.jobset_id', db('jobsets').select('id').where('name', s.jobset!)));
  if (s.status !== undefined) filter(() => query.where('builds.status', s.status!));
  if (s.system !== undefined) filter(() => query.where('builds.system', s.system!));
  if (s.store_path !== undefined) {
    const prefix = `${escapeLike(storePathPrefix(s.store_path))}%`;
    filter(() =>
      query.whereIn(
        'builds.id',
        db('builds as by_drv')
          .select('by_drv.id')
          .where('by_drv.drv_path', 'like', prefix)
          .union((u) => u.select('build_id').from('build_outputs').where('path', 'like', prefix)),
      ),
    );
  }
  if (s.from !== undefined) filter(() => query.where('builds.created_at', '>=', s.from!));
  if (s.to !== undefined) filter(() => query.where('builds.created_at', '<', s.to!));
  return { query, unfiltered, countOrder };
}

/** Advanced search over builds: a page, newest first, with a bounded total, as the API's JSON (build-page-json.ts). */
export async function searchBuildsJson(db: Db, s: BuildSearch): Promise<string> {
  const { query, unfiltered, countOrder } = await buildSearchQuery(db, s);
  return buildPageJson(db, query, s, unfiltered, countOrder);
}

/**
 * The same search as rows of `builds` (for pages that show a few columns), newest first, with a total exact up to
 * `exactUpTo` matches (EXACT_COUNT_LIMIT) and the planner's estimate past it.
 */
export async function searchBuildRows(db: Db, s: BuildSearch, exactUpTo?: number): Promise<BoundedPageOfRows<BuildRow>> {
  const { query, unfiltered, countOrder } = await buildSearchQuery(db, s);
  const newestFirst = [{ column: 'created_at', order: 'desc' as const }, { column: 'id', order: 'desc' as const }];
  return boundedPageRows<BuildRow>(db, query, s, newestFirst, { table: 'builds', unfiltered, countOrder, exactUpTo });
}

export interface QuickSearchResult {
  projects: Array<{ id: string; name: string; description: string | null }>;
  jobsets: Array<{ id: string; name: string; project_id: string; project_name: string }>;
  jobs: Array<{ name: string; jobset_id: string; jobset_name: string; project_id: string; project_name: string }>;
}

/** Autocomplete: projects, jobsets and jobs whose names contain `q`, up to `limit` of each, by name. */
export async function quickSearch(db: Db, q: string, limit: number): Promise<QuickSearchResult> {
  const trigram = await hasTrigramSearch(db);
  const projects = db('projects').select('id', 'name', 'description').orderBy([{ column: 'name' }, { column: 'id' }]).limit(limit);
  whereNameMatches(db, projects, 'projects.name', q, trigram);
  const jobsets = db('jobsets')
    .join('projects', 'projects.id', 'jobsets.project_id')
    .select('jobsets.id', 'jobsets.name', 'jobsets.project_id', 'projects.name as project_name')
    .orderBy([{ column: 'jobsets.name' }, { column: 'projects.name' }])
    .limit(limit);
  whereNameMatches(db, jobsets, 'jobsets.name', q, trigram);
  const jobs = db('jobs')
    .join('jobsets', 'jobsets.id', 'jobs.jobset_id')
    .join('projects', 'projects.id', 'jobs.project_id')
    .select('jobs.name', 'jobs.jobset_id', 'jobsets.name as jobset_name', 'jobs.project_id', 'projects.name as project_name')
    .orderBy([{ column: 'jobs.name' }, { column: 'projects.name' }, { column: 'jobsets.name' }])
    .limit(limit);
  whereNameMatches(db, jobs, 'jobs.name', q, trigram);
  const [p, js, j] = await Promise.all([projects, jobsets, jobs]);
  return { projects: p, jobsets: js, jobs: j } as QuickSearchResult;
}
