import type { Knex } from 'knex';
import type { Db } from '../../lib/db';
import { EXACT_COUNT_LIMIT, plannedRows, type BoundedCountOrder } from './bounded-page';
import type { PageRequest } from './page';
import { invalidField } from '../errors';

/** A page request that may continue after the last build of the page before (`next_cursor`). */
export interface BuildPageRequest extends PageRequest {
  cursor?: string;
}

/** The position of a build in the newest-first order: its created_at (to the microsecond, UTC) and id. */
interface CursorKey {
  createdAt: string;
  id: string;
}

const CURSOR_KEY = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)\|([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/** The key of an opaque cursor (base64url of `created_at|id`); anything else is a 400 naming query.cursor. */
export function decodeCursor(cursor: string): CursorKey {
  const match = CURSOR_KEY.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  const time = match ? Date.parse(match[1]) : NaN;
  // A real date (not 02-30), years PostgreSQL and JavaScript agree on.
  if (!match || Number.isNaN(time) || new Date(time).toISOString().slice(0, 19) !== match[1].slice(0, 19)) {
    throw invalidField('query.cursor', 'is not a cursor this API gave (next_cursor of a page)');
  }
  return { createdAt: match[1], id: match[2] };
}

/** A timestamp column of `b` as JavaScript's Date#toISOString writes it (UTC, milliseconds, `Z`). */
const isoTime = (column: string) => `to_char(b.${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** A build `b`'s outputs: the jsonb column overlaid with build_outputs by name (as buildViews merges them). */
export const BUILD_OUTPUTS_SQL = `b.outputs || coalesce((SELECT jsonb_object_agg(o.name, o.path) FROM build_outputs o WHERE o.build_id = b.id), '{}'::jsonb)`;
/** An aggregate's constituents' IDs by job name; other builds have none. */
const CONSTITUENTS = `CASE WHEN b.is_aggregate THEN coalesce((
    SELECT json_agg(ac.constituent_build_id ORDER BY cb.job_name, cb.id)
    FROM aggregate_constituents ac JOIN builds cb ON cb.id = ac.constituent_build_id
    WHERE ac.aggregate_build_id = b.id), '[]'::json) ELSE '[]'::json END`;

const viewSql = new WeakMap<Db, Promise<string>>();

/**
 * SQL of one build row `b` as the API answers it (COMPAT.md's Build, as buildViews shapes it): every column of
 * builds (read from the catalog once per process, so a new column is answered too), its outputs, its
 * constituents' IDs and its timestamps as the JSON of a Date. row_to_json of a row, not to_jsonb: a jsonb object
 * per row costs twice as much.
 */
export function buildViewJsonSql(db: Db): Promise<string> {
  let sql = viewSql.get(db);
  if (!sql) {
    sql = db
      .raw(`SELECT attname AS name, atttypid = 'timestamptz'::regtype AS is_time FROM pg_attribute
            WHERE attrelid = 'builds'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`)
      .then((r) => {
        const fields = (r.rows as Array<{ name: string; is_time: boolean }>).map(({ name, is_time }) => {
          if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`builds.${name}: unexpected column name`);
          return `${name === 'outputs' ? BUILD_OUTPUTS_SQL : is_time ? isoTime(name) : `b.${name}`} AS "${name}"`;
        });
        fields.push(`${CONSTITUENTS} AS "constituents"`);
        // A row's JSON without blanks ({"id":"…","status":"…"}): json_build_object writes `"id" : "…", ` (a page of
        // 50 builds is 15% bigger), and takes at most 100 arguments.
        return `row_to_json((SELECT view FROM (SELECT ${fields.join(', ')}) AS view))`;
      });
    sql.catch(() => viewSql.delete(db));
    viewSql.set(db, sql);
  }
  return sql;
}

const NEWEST_FIRST = [{ column: 'builds.created_at', order: 'desc' as const }, { column: 'builds.id', order: 'desc' as const }];

/** Estimated totals of filters past the cap, remembered for a while: an estimate is not exact anyway. */
const ESTIMATE_TTL_MS = 30_000;
const estimates = new WeakMap<Db, Map<string, { total: number; at: number }>>();

function estimateCache(db: Db): Map<string, { total: number; at: number }> {
  let cache = estimates.get(db);
  if (!cache) estimates.set(db, (cache = new Map()));
  return cache;
}

function rememberedEstimate(db: Db, key: string): number | undefined {
  const cache = estimateCache(db);
  const hit = cache.get(key);
  if (!hit) return undefined;
  if (Date.now() - hit.at > ESTIMATE_TTL_MS) {
    cache.delete(key);
    return undefined;
  }
  return hit.total;
}

function rememberEstimate(db: Db, key: string, total: number): void {
  const cache = estimateCache(db);
  if (cache.size >= 1000) cache.delete(cache.keys().next().value as string);
  cache.set(key, { total, at: Date.now() });
}

/** The planner's estimate of a filter's matches, or for all builds pg_class's row estimate. */
async function estimatedMatches(db: Db, matching: Knex.QueryBuilder, unfiltered: boolean): Promise<number> {
  if (!unfiltered) return plannedRows(db, matching.clone().clearSelect().select(db.raw('1')));
  const r = await db.raw(`SELECT reltuples::float8 AS n FROM pg_class WHERE oid = 'builds'::regclass`);
  return Math.round(Number((r.rows[0] as { n: number }).n));
}

/**
 * A page of builds (`matching`: builds filtered, unordered, unpaged) as the API's page object, serialised by
 * PostgreSQL in one statement: the page's keys walked from the index of its filter (created_at desc, id desc),
 * then only those rows read and shaped (buildViewJsonSql), with the bounded count of bounded-page.ts beside them
 * (exact up to EXACT_COUNT_LIMIT). Past the cap the total is an estimate, remembered for ESTIMATE_TTL_MS per
 * filter: meanwhile the statement counts nothing.
 *
 * Deep pages: an OFFSET is walked in the filter's index (index-only, no row read), so its cost grows with the
 * offset (a few ms per 100,000 rows skipped); `next_cursor` (the last build's key) continues from the key itself,
 * a range scan whose cost is one page's however deep. `offset` stays for circus clients.
 */
/** The page's keys (created_at, id) of `matching`, newest first, from `page.offset` or after `page.cursor`. */
function pageKeys(matching: Knex.QueryBuilder, page: BuildPageRequest): Knex.QueryBuilder {
  const keys = matching.clone().clearSelect().select('builds.created_at', 'builds.id').orderBy(NEWEST_FIRST).limit(page.limit).offset(page.offset);
  if (page.cursor !== undefined) {
    // After the cursor's build: a range of the filter's index from that key on, however deep the page is.
    const after = decodeCursor(page.cursor);
    keys.whereRaw('(builds.created_at, builds.id) < (?::timestamptz, ?::uuid)', [after.createdAt, after.id]);
  }
  return keys;
}

/** One statement: the builds of `keys` as a JSON array (`items`), their number (`shown`), and `extra` columns. */
async function pageStatement<T>(db: Db, keys: Knex.QueryBuilder, extra = '', bindings: Knex.RawBinding[] = []): Promise<T & { items: string; shown: number }> {
  const r = await db.raw(
    `SELECT coalesce(json_agg(${await buildViewJsonSql(db)} ORDER BY page.created_at DESC, page.id DESC), '[]'::json)::text AS items,
            count(*)::int AS shown${extra}
     FROM ? AS page JOIN builds b ON b.id = page.id`,
    [...bindings, keys],
  );
  return r.rows[0];
}

/** A bare array of builds (lists that answer no page object), serialised by PostgreSQL like buildPageJson's items. */
export async function buildListJson(db: Db, matching: Knex.QueryBuilder, page: BuildPageRequest): Promise<string> {
  return (await pageStatement(db, pageKeys(matching, page))).items;
}

export async function buildPageJson(db: Db, matching: Knex.QueryBuilder, page: BuildPageRequest, unfiltered: boolean, countOrder?: BoundedCountOrder): Promise<string> {
  const { sql, bindings } = matching.clone().clearSelect().toSQL();
  const key = JSON.stringify([sql, bindings]);
  const known = rememberedEstimate(db, key);
  // Counted in the page's order (or countOrder), so the count walks the page's index and stops after the cap.
  const capped = matching.clone().clearSelect().select(db.raw('1')).orderBy(countOrder ?? NEWEST_FIRST).limit(EXACT_COUNT_LIMIT + 1);
  const counted = known === undefined ? db.raw('(SELECT count(*) FROM ? AS capped)::int', [capped]) : db.raw('NULL::int');
  const row = await pageStatement<{ counted: number | null; last_key: string | null }>(
    db,
    pageKeys(matching, page),
    `, ? AS counted,
            (array_agg(to_char(page.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '|' || page.id
                       ORDER BY page.created_at, page.id))[1] AS last_key`,
    [counted],
  );
  let total: number;
  let exact = false;
  if (known !== undefined) total = known;
  else if ((row.counted as number) <= EXACT_COUNT_LIMIT) [total, exact] = [row.counted as number, true];
  else {
    total = Math.max(row.counted as number, await estimatedMatches(db, matching, unfiltered));
    rememberEstimate(db, key, total);
  }
  if (page.cursor === undefined) total = Math.max(total, page.offset + row.shown);
  // A full page may have more after it; a short one is the end.
  const next = row.shown === page.limit && row.last_key ? JSON.stringify(Buffer.from(row.last_key).toString('base64url')) : 'null';
  return `{"items":${row.items},"total":${total},"total_exact":${exact},"limit":${page.limit},"offset":${page.offset},"next_cursor":${next}}`;
}
