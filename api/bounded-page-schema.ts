import type { JsonSchema } from './route';

/**
 * A page of builds whose total may be an estimate (more than 10,000 matches): `total_exact` says which;
 * `next_cursor` continues after its last build (a full page) at the cost of one page, however deep.
 */
export function buildPageOf(item: JsonSchema): JsonSchema {
  return {
    type: 'object',
    required: ['items', 'total', 'limit', 'offset', 'total_exact'],
    properties: {
      items: { type: 'array', items: item },
      total: { type: 'integer', description: 'exact up to 10,000 matches; past that, the query planner\'s estimate' },
      total_exact: { type: 'boolean' },
      limit: { type: 'integer' },
      offset: { type: 'integer' },
      next_cursor: { type: ['string', 'null'], description: 'pass as `cursor` for the builds after this page; null after a short (last) page' },
    },
  };
}
