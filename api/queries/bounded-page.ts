import type { Knex } from 'knex';
import type { Db } from '../../lib/db';
import type { PageOfRows, PageRequest } from './page';

/** Up to this many matches, a page's `total` is an exact count; past it, the planner's estimate. */
export const EXACT_COUNT_LIMIT = 10_000;

export interface BoundedPageOfRows<T> extends PageOfRows<T> {
  /** False when `total` is an estimate (more than EXACT_COUNT_LIMIT matches). */
  total_exact: boolean;
}

/** The planner's row estimate of a query (EXPLAIN, not run). */
export async function plannedRows(db: Db, query: Knex.QueryBuilder): Promise<number> {
  const { sql, bindings } = query.toSQL();
  const explained = await db.raw(`EXPLAIN (FORMAT JSON) ${sql}`, bindings as Knex.RawBinding[]);
  const plan = (explained.rows[0] as { 'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }> })['QUERY PLAN'][0].Plan;
  return Math.round(plan['Plan Rows']);
}

/**
 * The order in which a capped count walks the matches: by default the page's own (the planner walks the page's
 * index and stops after the cap), or one an index of the filter gives when the page's order is no range of any
 * index for it (builds of several job names: the count would walk every build newest first).
 */
export type BoundedCountOrder = Array<{ column: string; order: 'asc' | 'desc' }>;

/**
 * The number of rows of `base`, bounded in cost: exact up to `exactUpTo` (EXACT_COUNT_LIMIT) matches (counting stops
 * at one more), else the planner's estimate (never below the cap). An unfiltered table asks pg_class first, so
 * a big table is never counted at all.
 */
export async function boundedCount(
  db: Db,
  base: Knex.QueryBuilder,
  order: Array<{ column: string; order: 'asc' | 'desc' }>,
  unfilteredTable?: string,
  exactUpTo = EXACT_COUNT_LIMIT,
): Promise<{ total: number; exact: boolean }> {
  if (unfilteredTable) {
    const r = await db.raw('SELECT reltuples::float8 AS n FROM pg_class WHERE oid = to_regclass(?)', [unfilteredTable]);
    const estimate = Number((r.rows[0] as { n: number } | undefined)?.n ?? -1);
    if (estimate > exactUpTo * 2) return { total: Math.round(estimate), exact: false };
  }
  // Counted in the page's order (or countOrder): the planner walks the same index as the page (stopping after the
  // cap) instead of reading the table until it has seen enough matches.
  const capped = base.clone().clearSelect().clearOrder().select(db.raw('1')).orderBy(order).limit(exactUpTo + 1);
  const [{ count }] = (await db.from(capped.as('capped')).count<{ count: string }[]>('* as count')) as { count: string }[];
  const n = Number(count);
  if (n <= exactUpTo) return { total: n, exact: true };
  const estimate = await plannedRows(db, base.clone().clearSelect().clearOrder().select(db.raw('1')));
  return { total: Math.max(n, estimate), exact: false };
}

/**
 * One page of a filtered query, with its total bounded by boundedCount. The page's keys are read first
 * (an index-only walk of `keyColumns` in `order`, cheap even far from the start) and only the page's rows
 * are then fetched whole, in the same order.
 */
export async function boundedPageRows<T>(
  db: Db,
  base: Knex.QueryBuilder,
  page: PageRequest,
  order: Array<{ column: string; order: 'asc' | 'desc' }>,
  options: { table: string; unfiltered: boolean; countOrder?: BoundedCountOrder; exactUpTo?: number },
): Promise<BoundedPageOfRows<T>> {
  const qualified = order.map((o) => ({ ...o, column: `${options.table}.${o.column}` }));
  const keys = base.clone().clearSelect().select(qualified.map((o) => o.column)).orderBy(qualified).limit(page.limit).offset(page.offset);
  const [counted, rows] = await Promise.all([
    boundedCount(db, base, options.countOrder ?? qualified, options.unfiltered ? options.table : undefined, options.exactUpTo),
    db
      .select(`${options.table}.*`)
      .from(keys.as('page'))
      .join(options.table, `${options.table}.id`, 'page.id')
      .orderBy(order.map((o) => ({ ...o, column: `page.${o.column}` }))) as Promise<T[]>,
  ]);
  const total = Math.max(counted.total, page.offset + rows.length);
  return { rows, total, total_exact: counted.exact, limit: page.limit, offset: page.offset };
}
