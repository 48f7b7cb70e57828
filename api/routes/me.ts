import { defineRoute, type Principal, type RequestContext, type RouteDef } from '../route';
import { ApiError, forbidden, invalidField, notFound } from '../errors';
import { errorBody, noContent } from '../schemas';
import { findApiKey } from '../queries/api-keys';
import { findSession, SESSION_COOKIE } from '../queries/sessions';
import { endSessionsOfUser, findUser, findUserCredentials, updateUser, type UserRow } from '../queries/users';
import { hashPassword, verifyPassword } from '../../lib/password-hash';
import { emailSchema, fullNameSchema, passwordSchema, userSchema } from './users';

/**
 * What GET /me answers for an API key that belongs to no user: the key itself, dressed as a user so
 * that clients reading User fields keep working. `id` is the key's id, `username` its name,
 * `user_type` is "api_key", `enabled` true, `created_at`/`updated_at` the key's creation time, and
 * the fields a key does not have (email, full_name, last_login_at) are null.
 */
export interface ApiKeyPrincipalView extends Omit<UserRow, 'user_type'> {
  user_type: 'api_key';
}

async function apiKeyAsUser(rc: RequestContext, principal: Principal): Promise<ApiKeyPrincipalView> {
  const key = await findApiKey(rc.db, principal.id);
  if (!key) throw notFound('API key', principal.id);
  return {
    id: key.id,
    username: key.name,
    email: null,
    full_name: null,
    user_type: 'api_key',
    role: key.role,
    enabled: true,
    created_at: key.created_at,
    updated_at: key.created_at,
    last_login_at: null,
  };
}

function signedIn(rc: RequestContext): Principal {
  if (!rc.principal) throw new ApiError('UNAUTHORIZED', 'authentication required');
  return rc.principal;
}

/** The signed-in user's id; an API key that belongs to no user has no account to change. */
export function userIdOf(rc: RequestContext): string {
  const principal = signedIn(rc);
  if (!principal.userId) throw forbidden('this API key belongs to no user; sign in as a user (or use a key owned by one) to change an account');
  return principal.userId;
}

export const meRoutes: RouteDef[] = [
  defineRoute({
    method: 'GET',
    path: '/api/v1/me',
    summary: 'Get the current user',
    tag: 'me',
    access: 'user',
    responses: { 200: userSchema, 401: errorBody },
    handler: async (_input, rc) => {
      const principal = signedIn(rc);
      if (!principal.userId) return apiKeyAsUser(rc, principal);
      return (await findUser(rc.db, principal.userId)) ?? Promise.reject(notFound('user', principal.userId));
    },
  }),
  defineRoute<{}, {}, { email?: string; full_name?: string | null }>({
    method: 'PUT',
    path: '/api/v1/me',
    summary: 'Update the current user',
    tag: 'me',
    access: 'user',
    // No role, username or enabled here: those are an admin's (PUT /users/{id}); sending them is a 400.
    body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { email: emailSchema, full_name: fullNameSchema } },
    responses: { 200: userSchema, 400: errorBody, 401: errorBody, 403: errorBody, 409: errorBody },
    handler: async ({ body }, rc) => {
      const userId = userIdOf(rc);
      const user = await updateUser(rc.db, userId, body);
      if (!user) throw notFound('user', userId);
      rc.audit = { targetKind: 'user', targetId: user.id };
      return user;
    },
  }),
  defineRoute<{}, {}, { current_password: string; new_password: string }>({
    method: 'POST',
    path: '/api/v1/me/password',
    summary: "Change the current user's password",
    tag: 'me',
    access: 'user',
    body: {
      type: 'object',
      required: ['current_password', 'new_password'],
      additionalProperties: false,
      properties: { current_password: { type: 'string', minLength: 1, maxLength: 1024 }, new_password: passwordSchema },
    },
    responses: { 204: noContent, 400: errorBody, 401: errorBody, 403: errorBody },
    handler: async ({ body }, rc) => {
      const userId = userIdOf(rc);
      const user = await findUserCredentials(rc.db, { id: userId });
      if (!user) throw notFound('user', userId);
      // A wrong current password is a 400 naming the field, not a 401: the caller is signed in, and
      // a 401 would read as "your session ended" to a browser client.
      if (!user.password_hash || !(await verifyPassword(user.password_hash, body.current_password))) {
        throw invalidField('body.current_password', 'does not match the current password');
      }
      const passwordHash = await hashPassword(body.new_password);
      const cookie = rc.principal?.viaCookie ? rc.koa.cookies.get(SESSION_COOKIE) : undefined;
      const currentSession = cookie ? await findSession(rc.db, cookie) : undefined;
      await rc.db.transaction(async (trx) => {
        await updateUser(trx, userId, { passwordHash });
        // Other browser sessions end; the one that changed the password stays signed in.
        await endSessionsOfUser(trx, userId, currentSession?.session_id);
      });
      rc.audit = { targetKind: 'user', targetId: userId, details: { password_changed: true } };
    },
  }),
];
