import { defineRoute, ROLES, type RouteDef, type Role } from '../route';
import { conflict, notFound } from '../errors';
import { errorBody, idParams, noContent, nullableTimestamp, timestamp, uuid, arrayOf, nullable } from '../schemas';
import { createApiKey, listApiKeys, revokeApiKey } from '../queries/api-keys';

export const roleSchema = { type: 'string', enum: [...ROLES] };

const apiKeySchema = {
  type: 'object',
  required: ['id', 'name', 'role', 'created_at', 'last_used_at'],
  properties: {
    id: uuid,
    name: { type: 'string' },
    role: roleSchema,
    user_id: nullable(uuid),
    created_at: timestamp,
    last_used_at: { ...nullableTimestamp, description: 'the key’s last use, recorded at most once a minute' },
  },
};

const createdApiKeySchema = {
  type: 'object',
  required: ['id', 'name', 'role', 'key', 'created_at'],
  properties: {
    ...apiKeySchema.properties,
    key: { type: 'string', description: 'The secret; shown only in this answer.' },
  },
};

const errors = { 401: errorBody, 403: errorBody };

export const apiKeyRoutes: RouteDef[] = [
  defineRoute({
    method: 'GET',
    path: '/api/v1/api-keys',
    summary: 'List API keys',
    tag: 'api-keys',
    access: 'admin',
    responses: { 200: arrayOf(apiKeySchema), ...errors },
    handler: async (_input, rc) => listApiKeys(rc.db),
  }),
  defineRoute<{}, {}, { name: string; role: Role }>({
    method: 'POST',
    path: '/api/v1/api-keys',
    summary: 'Create an API key',
    tag: 'api-keys',
    access: 'admin',
    body: {
      type: 'object',
      required: ['name'],
      additionalProperties: false,
      properties: { name: { type: 'string', minLength: 1, maxLength: 200 }, role: { ...roleSchema, default: 'read-only' } },
    },
    responses: { 200: createdApiKeySchema, 400: errorBody, ...errors },
    handler: async ({ body }, rc) => {
      // The key belongs to the user who made it (none when made with another key).
      const created = await createApiKey(rc.db, { name: body.name, role: body.role, userId: rc.principal?.userId ?? null });
      rc.audit = { targetKind: 'api_key', targetId: created.id, details: { name: created.name, role: created.role } };
      return created;
    },
  }),
  defineRoute<{ id: string }>({
    method: 'DELETE',
    path: '/api/v1/api-keys/{id}',
    summary: 'Revoke an API key',
    tag: 'api-keys',
    access: 'admin',
    params: idParams,
    responses: { 204: noContent, 400: errorBody, ...errors, 404: errorBody, 409: errorBody },
    handler: async ({ params }, rc) => {
      // A key that revokes itself locks its holder out mid-task: rotate by creating the new key first and
      // revoking the old one with it (or from a signed-in session).
      if (rc.principal?.kind === 'api_key' && rc.principal.id === params.id) {
        throw conflict('an API key cannot revoke itself: revoke it with another admin key or from a signed-in session');
      }
      if (!(await revokeApiKey(rc.db, params.id))) throw notFound('API key', params.id);
      rc.audit = { targetKind: 'api_key', targetId: params.id };
    },
  }),
];
