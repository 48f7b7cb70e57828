import type { Context } from 'koa';
import type { Db } from '../../lib/db';
import { verifyDecoyPassword, verifyPassword } from '../../lib/password-hash';
import { writeAuditEntry } from '../queries/audit-log';
import { createSession, deleteSession, findSession, SESSION_COOKIE } from '../queries/sessions';
import { findUserCredentials, recordLogin } from '../queries/users';

/**
 * The sign-in form's work, the same steps as POST /api/v1/auth/login: check the password (a decoy
 * check for unknown users, so timing tells nothing), open a session, set its cookie, audit.
 */
export async function signInWithPassword(ctx: Context, db: Db, username: string, password: string): Promise<boolean> {
  const found = username ? await findUserCredentials(db, { username }) : undefined;
  const matches = found?.password_hash ? await verifyPassword(found.password_hash, password) : await verifyDecoyPassword(password);
  if (!found || !matches || !found.enabled) return false;
  const session = await createSession(db, found.id);
  await recordLogin(db, found.id);
  ctx.cookies.set(SESSION_COOKIE, session.token, { httpOnly: true, sameSite: 'lax', path: '/', expires: session.expiresAt, secure: ctx.secure, overwrite: true });
  await writeAuditEntry(db, {
    actorKind: 'user',
    actorId: found.id,
    actorName: found.username,
    action: 'POST /login',
    targetKind: 'user',
    targetId: found.id,
    details: { username: found.username, via: 'dashboard' },
    remoteAddr: ctx.ip || null,
  });
  return true;
}

/** Ends the cookie's session when the form carries its CSRF token; false when it does not. */
export async function signOut(ctx: Context, db: Db, csrfToken: string): Promise<boolean> {
  const token = ctx.cookies.get(SESSION_COOKIE);
  if (!token) return true;
  const session = await findSession(db, token);
  if (session && session.csrf_token !== csrfToken) return false;
  await deleteSession(db, token);
  ctx.cookies.set(SESSION_COOKIE, '', { httpOnly: true, sameSite: 'lax', path: '/', expires: new Date(0), secure: ctx.secure, overwrite: true });
  if (session) {
    await writeAuditEntry(db, {
      actorKind: 'user',
      actorId: session.user_id,
      actorName: session.username,
      action: 'POST /logout',
      targetKind: 'user',
      targetId: session.user_id,
      details: { via: 'dashboard' },
      remoteAddr: ctx.ip || null,
    });
  }
  return true;
}
