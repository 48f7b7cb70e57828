import { defineRoute, type RouteDef, type Role } from '../route';
import { notFound } from '../errors';
import { arrayOf, errorBody, idParams, noContent, nullableString, nullableTimestamp, timestamp, uuid } from '../schemas';
import { deleteUser, endSessionsOfUser, findUser, insertUser, listUsers, updateUser, type UserChanges } from '../queries/users';
import { hashPassword } from '../../lib/password-hash';
import { roleSchema } from './api-keys';

export const userSchema = {
  type: 'object',
  required: ['id', 'username', 'email', 'full_name', 'user_type', 'role', 'enabled', 'created_at', 'updated_at', 'last_login_at'],
  properties: {
    id: uuid,
    username: { type: 'string' },
    email: nullableString,
    full_name: nullableString,
    user_type: { type: 'string' },
    role: roleSchema,
    enabled: { type: 'boolean' },
    created_at: timestamp,
    updated_at: nullableTimestamp,
    last_login_at: nullableTimestamp,
  },
};

export const usernameSchema = { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_][A-Za-z0-9._@-]*$' };
export const emailSchema = { type: 'string', format: 'email', maxLength: 320 };
export const fullNameSchema = { type: ['string', 'null'], maxLength: 200 };
/** The password policy: at least 8 characters (and a bound, so hashing stays cheap). */
export const passwordSchema = { type: 'string', minLength: 8, maxLength: 1024 };

interface UserCreateBody {
  username: string;
  email: string;
  password: string;
  full_name?: string | null;
  role?: Role;
}

interface UserUpdateBody {
  username?: string;
  email?: string;
  password?: string;
  full_name?: string | null;
  role?: Role;
  enabled?: boolean;
}

const userUpdateProperties = {
  username: usernameSchema,
  email: emailSchema,
  password: passwordSchema,
  full_name: fullNameSchema,
  role: roleSchema,
  enabled: { type: 'boolean' },
};

const errors = { 400: errorBody, 401: errorBody, 403: errorBody };

export const userRoutes: RouteDef[] = [
  defineRoute({
    method: 'GET',
    path: '/api/v1/users',
    summary: 'List users',
    tag: 'users',
    access: 'admin',
    responses: { 200: arrayOf(userSchema), 401: errorBody, 403: errorBody },
    handler: async (_input, rc) => listUsers(rc.db),
  }),
  defineRoute<{}, {}, UserCreateBody>({
    method: 'POST',
    path: '/api/v1/users',
    summary: 'Create a user',
    tag: 'users',
    access: 'admin',
    body: {
      type: 'object',
      required: ['username', 'email', 'password'],
      additionalProperties: false,
      properties: { username: usernameSchema, email: emailSchema, password: passwordSchema, full_name: fullNameSchema, role: roleSchema },
    },
    responses: { 200: userSchema, ...errors, 409: errorBody },
    handler: async ({ body }, rc) => {
      const user = await insertUser(rc.db, {
        username: body.username,
        email: body.email,
        passwordHash: await hashPassword(body.password),
        full_name: body.full_name,
        role: body.role,
      });
      rc.audit = { targetKind: 'user', targetId: user.id, details: { username: user.username, email: user.email, full_name: user.full_name, role: user.role } };
      return user;
    },
  }),
  defineRoute<{ id: string }>({
    method: 'GET',
    path: '/api/v1/users/{id}',
    summary: 'Get a user',
    tag: 'users',
    access: 'admin',
    params: idParams,
    responses: { 200: userSchema, ...errors, 404: errorBody },
    handler: async ({ params }, rc) => (await findUser(rc.db, params.id)) ?? Promise.reject(notFound('user', params.id)),
  }),
  defineRoute<{ id: string }, {}, UserUpdateBody>({
    method: 'PUT',
    path: '/api/v1/users/{id}',
    summary: 'Update a user',
    tag: 'users',
    access: 'admin',
    params: idParams,
    body: { type: 'object', additionalProperties: false, minProperties: 1, properties: userUpdateProperties },
    responses: { 200: userSchema, ...errors, 404: errorBody, 409: errorBody },
    handler: async ({ params, body }, rc) => {
      const { password, ...fields } = body;
      const changes: UserChanges = { ...fields };
      if (password !== undefined) changes.passwordHash = await hashPassword(password);
      const user = await rc.db.transaction(async (trx) => {
        const updated = await updateUser(trx, params.id, changes);
        // A new password (set by an admin) ends the user's browser sessions.
        if (updated && password !== undefined) await endSessionsOfUser(trx, updated.id);
        return updated;
      });
      if (!user) throw notFound('user', params.id);
      rc.audit = { targetKind: 'user', targetId: user.id, details: { ...fields, ...(password !== undefined ? { password_changed: true } : {}) } };
      return user;
    },
  }),
  defineRoute<{ id: string }>({
    method: 'DELETE',
    path: '/api/v1/users/{id}',
    summary: 'Delete a user',
    tag: 'users',
    access: 'admin',
    params: idParams,
    responses: { 204: noContent, ...errors, 404: errorBody },
    handler: async ({ params }, rc) => {
      if (!(await deleteUser(rc.db, params.id))) throw notFound('user', params.id);
      rc.audit = { targetKind: 'user', targetId: params.id };
    },
  }),
];
