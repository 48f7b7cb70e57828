import { defineRoute, type RouteDef } from '../route';
import { errorBody, nullableString, pageOf, pageQueryProperties, timestamp, uuid } from '../schemas';
import { pageAuditLog, type AuditFilter } from '../queries/audit-log';

const auditLogEntrySchema = {
  type: 'object',
  required: ['id', 'occurred_at', 'actor_kind', 'actor_id', 'actor_name', 'action', 'target_kind', 'target_id', 'details', 'remote_addr'],
  properties: {
    id: uuid,
    occurred_at: timestamp,
    actor_kind: { type: 'string', description: 'api_key, user or anonymous' },
    actor_id: nullableString,
    actor_name: nullableString,
    action: { type: 'string', description: 'METHOD /path of the route, e.g. "POST /api/v1/projects"' },
    target_kind: nullableString,
    target_id: nullableString,
    details: { type: ['object', 'null'] },
    remote_addr: nullableString,
  },
};

const filterString = { type: 'string', minLength: 1, maxLength: 500 };

export const adminAuditRoutes: RouteDef[] = [
  defineRoute<{}, AuditFilter>({
    method: 'GET',
    path: '/api/v1/admin/audit-log',
    summary: 'Paginated audit log (admin only)',
    tag: 'admin',
    access: 'admin',
    query: {
      type: 'object',
      additionalProperties: false,
      properties: { ...pageQueryProperties, action: filterString, actor_name: filterString, target_kind: filterString, target_id: filterString },
    },
    responses: { 200: pageOf(auditLogEntrySchema), 400: errorBody, 401: errorBody, 403: errorBody },
    handler: async ({ query }, rc) => pageAuditLog(rc.db, query),
  }),
];
