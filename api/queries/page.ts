import type { Knex } from 'knex';

export interface PageRequest {
  limit: number;
  offset: number;
}

export interface PageOfRows<T> {
  rows: T[];
  total: number;
  limit: number;
  offset: number;
}

/**
 * One page of a filtered query: the total count of `base` and the rows of the requested page, selected
 * with `columns` in `order`. The list routes turn `rows` into their page object's `items`.
 */
export async function pageRows<T>(
  base: Knex.QueryBuilder,
  page: PageRequest,
  order: Array<{ column: string; order: 'asc' | 'desc' }>,
  columns = '*',
): Promise<PageOfRows<T>> {
  const [{ count }] = await base.clone().clearSelect().count<{ count: string }[]>('* as count');
  const rows = (await base.clone().select(columns).orderBy(order).limit(page.limit).offset(page.offset)) as T[];
  return { rows, total: Number(count), limit: page.limit, offset: page.offset };
}
