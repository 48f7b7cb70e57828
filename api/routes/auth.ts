import type { Context } from 'koa';
import { defineRoute, type RouteDef } from '../route';
import { unauthorized } from '../errors';
import { emptyBody, errorBody, noContent } from '../schemas';
import { createSession, deleteSession, SESSION_COOKIE } from '../queries/sessions';
import { findUserCredentials, recordLogin } from '../queries/users';
import { verifyDecoyPassword, verifyPassword } from '../../lib/password-hash';
import { userSchema } from './users';
import { limitLoginAttempt } from '../login-rate-limit';

/** One message for an unknown user, a wrong password and a disabled account: nothing to enumerate. */
const LOGIN_REFUSED = 'invalid username or password';

export function setSessionCookie(ctx: Context, token: string, expires: Date): void {
  ctx.cookies.set(SESSION_COOKIE, token, { httpOnly: true, sameSite: 'lax', path: '/', expires, secure: ctx.secure, overwrite: true });
}

function clearSessionCookie(ctx: Context): void {
  ctx.cookies.set(SESSION_COOKIE, '', { httpOnly: true, sameSite: 'lax', path: '/', expires: new Date(0), secure: ctx.secure, overwrite: true });
}

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
      const attempt = await limitLoginAttempt(rc, 'password', body.username);
      const found = await findUserCredentials(rc.db, { username: body.username });
      const passwordMatches = found?.password_hash ? await verifyPassword(found.password_hash, body.password) : await verifyDecoyPassword(body.password);
      if (!found || !passwordMatches || !found.enabled) {
        attempt.refused();
        throw unauthorized(LOGIN_REFUSED);
      }
      const session = await createSession(rc.db, found.id);
      const user = await recordLogin(rc.db, found.id);
      setSessionCookie(rc.koa, session.token, session.expiresAt);
      rc.audit = { targetKind: 'user', targetId: found.id, details: { username: found.username } };
      return { user, csrf_token: session.csrfToken };
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
