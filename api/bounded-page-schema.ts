import type { JsonSchema } from './route';

/** A page whose total may be an estimate (more than 10,000 matches): `total_exact` says which. */
export function boundedPageOf(item: JsonSchema): JsonSchema {
  return {
    type: 'object',
    required: ['items', 'total', 'limit', 'offset', 'total_exact'],
    properties: {
      items: { type: 'array', items: item },
      total: { type: 'integer', description: 'exact up to 10,000 matches; past that, the query planner\'s estimate' },
      total_exact: { type: 'boolean' },
      limit: { type: 'integer' },
      offset: { type: 'integer' },
    },
  };
}
