/** Pages of a list: `?page=N` (from 1), a fixed size, and one extra row fetched to know whether a next page exists. */
export interface PageWindow {
  page: number;
  limit: number;
  offset: number;
}

export const PAGE_SIZE = 25;
const MAX_PAGE = 10_000;

export function pageWindow(query: Record<string, unknown>, param = 'page', size = PAGE_SIZE): PageWindow {
  const raw = Number(query[param]);
  const page = Number.isInteger(raw) && raw >= 1 && raw <= MAX_PAGE ? raw : 1;
  return { page, limit: size, offset: (page - 1) * size };
}

/** Fetch `limit + 1` rows, then cut: the rows of the page and whether a next page exists. */
export function cutPage<T>(rows: T[], window: PageWindow): { rows: T[]; more: boolean } {
  return { rows: rows.slice(0, window.limit), more: rows.length > window.limit };
}
