import type { Context } from 'koa';
import type { Db } from '../../lib/db';
import { ApiError } from '../errors';
import type { AppDeps } from '../route';
import { writeAuditEntry } from '../queries/audit-log';
import { deleteSession, findSession, SESSION_COOKIE } from '../queries/sessions';
import { clearSessionCookie, signInWithPassword } from '../sign-in';

/** Why the form's sign-in failed, for the page: 401 (wrong, unknown or disabled) or 429 (too many refusals). */
export interface SignInRefusal {
  status: number;
  message: string;
}

/**
 * The sign-in form's work: POST /api/v1/auth/login's steps (api/sign-in.ts, its refusal limits included),
 * audited as the form's sign-in. Answers undefined when signed in, else why not.
 */
export async function signInByForm(ctx: Context, deps: AppDeps, username: string, password: string): Promise<SignInRefusal | undefined> {
  try {
    const { user } = await signInWithPassword({ deps, db: deps.db, principal: undefined, koa: ctx, remoteAddr: ctx.ip, audit: {} }, username, password);
    await writeAuditEntry(deps.db, {
      actorKind: 'user',
      actorId: user.id,
      actorName: user.username,
      action: 'POST /login',
      targetKind: 'user',
      targetId: user.id,
      details: { username: user.username, via: 'dashboard' },
      remoteAddr: ctx.ip || null,
    });
    return undefined;
  } catch (err) {
    if (!(err instanceof ApiError) || (err.status !== 401 && err.status !== 429)) throw err;
    return err.status === 401 ? { status: 401, message: 'Invalid username or password.' } : { status: 429, message: `Too many refused sign-ins: ${err.message}.` };
  }
}

/** Ends the cookie's session when the form carries its CSRF token; false when it does not. */
export async function signOut(ctx: Context, db: Db, csrfToken: string): Promise<boolean> {
  const token = ctx.cookies.get(SESSION_COOKIE);
  if (!token) return true;
  const session = await findSession(db, token);
  if (session && session.csrf_token !== csrfToken) return false;
  await deleteSession(db, token);
  clearSessionCookie(ctx);
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
