import type { Context } from 'koa';
import type { Db } from '../lib/db';
import { verifyDecoyPassword, verifyPassword } from '../lib/password-hash';
import { unauthorized } from './errors';
import { limitLoginAttempt } from './login-rate-limit';
import { createSession, SESSION_COOKIE } from './queries/sessions';
import { findUserCredentials, recordLogin, type UserRow } from './queries/users';
import type { RequestContext } from './route';

/** One message for an unknown user, a wrong password and a disabled account: nothing to enumerate. */
export const LOGIN_REFUSED = 'invalid username or password';

export function setSessionCookie(ctx: Context, token: string, expires: Date): void {
  ctx.cookies.set(SESSION_COOKIE, token, { httpOnly: true, sameSite: 'lax', path: '/', expires, secure: ctx.secure, overwrite: true });
}

export function clearSessionCookie(ctx: Context): void {
  ctx.cookies.set(SESSION_COOKIE, '', { httpOnly: true, sameSite: 'lax', path: '/', expires: new Date(0), secure: ctx.secure, overwrite: true });
}

/**
 * The end of every sign-in (password through the API or the dashboard's form, LDAP, GitHub): a session
 * for the user and its cookie. Answers the session's CSRF token and when it expires.
 */
export async function openSession(ctx: Context, db: Db, userId: string): Promise<{ csrfToken: string; expiresAt: Date }> {
  const session = await createSession(db, userId);
  setSessionCookie(ctx, session.token, session.expiresAt);
  return { csrfToken: session.csrfToken, expiresAt: session.expiresAt };
}

/**
 * A password sign-in, for POST /api/v1/auth/login and the dashboard's form alike: the refusal limits,
 * the password check (a decoy check for unknown users, so timing tells nothing), then the session and
 * the user's last sign-in. A refusal throws 401 (or 429 once the limits are used up).
 */
export async function signInWithPassword(rc: RequestContext, username: string, password: string): Promise<{ user: UserRow; csrfToken: string }> {
  const attempt = await limitLoginAttempt(rc, 'password', username);
  const found = username ? await findUserCredentials(rc.db, { username }) : undefined;
  const matches = found?.password_hash ? await verifyPassword(found.password_hash, password) : await verifyDecoyPassword(password);
  if (!found || !matches || !found.enabled) {
    attempt.refused();
    throw unauthorized(LOGIN_REFUSED);
  }
  const { csrfToken } = await openSession(rc.koa, rc.db, found.id);
  const user = (await recordLogin(rc.db, found.id))!;
  return { user, csrfToken };
}
