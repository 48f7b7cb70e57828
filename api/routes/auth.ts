import { defineRoute, type RouteDef } from '../route';
import { emptyBody, errorBody, noContent } from '../schemas';
import { deleteSession, SESSION_COOKIE } from '../queries/sessions';
import { userSchema } from './users';
import { clearSessionCookie, signInWithPassword } from '../sign-in';

export const authRoutes: RouteDef[] = [
  defineRoute<{}, {}, { username: string; password: string }>({
    method: 'POST',
    path: '/api/v1/auth/login',
    summary: 'Sign in with username and password (sets the session cookie)',
    tag: 'auth',
    access: 'always-public',
    body: {
      type: 'object',
      required: ['username', 'password'],
      additionalProperties: false,
      properties: { username: { type: 'string', minLength: 1, maxLength: 100 }, password: { type: 'string', minLength: 1, maxLength: 1024 } },
    },
    responses: {
      200: { type: 'object', required: ['user', 'csrf_token'], properties: { user: userSchema, csrf_token: { type: 'string' } } },
      400: errorBody,
      401: errorBody,
      429: errorBody,
    },
    handler: async ({ body }, rc) => {
      const { user, csrfToken } = await signInWithPassword(rc, body.username, body.password);
      rc.audit = { targetKind: 'user', targetId: user.id, details: { username: user.username } };
      return { user, csrf_token: csrfToken };
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/api/v1/auth/logout',
    summary: 'Sign out (ends the session and clears its cookie)',
    tag: 'auth',
    access: 'user',
    body: emptyBody,
    responses: { 204: noContent, 401: errorBody, 403: errorBody },
    handler: async (_input, rc) => {
      const token = rc.koa.cookies.get(SESSION_COOKIE);
      if (token) await deleteSession(rc.db, token);
      clearSessionCookie(rc.koa);
      rc.audit = { targetKind: 'user', targetId: rc.principal?.userId ?? null, details: {} };
    },
  }),
];
