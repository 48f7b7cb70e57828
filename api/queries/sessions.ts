import crypto from 'node:crypto';
import type { Db } from '../../lib/db';
import type { Role } from '../route';
import { hashSecret } from './api-keys';

export const SESSION_COOKIE = 'ringmaster_session';
export const SESSION_TTL_MS = 7 * 24 * 3600 * 1000;

export interface SessionPrincipalRow {
  session_id: string;
  csrf_token: string;
  user_id: string;
  username: string;
  role: Role;
}

export async function createSession(db: Db, userId: string): Promise<{ token: string; csrfToken: string; expiresAt: Date }> {
  const token = crypto.randomBytes(32).toString('base64url');
  const csrfToken = crypto.randomBytes(24).toString('base64url');
  const expiresAt = new Date(Date.now() + SESSION_TTL_MS);
  await db('sessions').insert({ user_id: userId, token_hash: hashSecret(token), csrf_token: csrfToken, expires_at: expiresAt });
  return { token, csrfToken, expiresAt };
}

export async function findSession(db: Db, token: string): Promise<SessionPrincipalRow | undefined> {
  return findSessionByHash(db, hashSecret(token));
}

/** findSession, given the token's SHA-256 (hashSecret); with the session's expiry. */
export async function findSessionByHash(db: Db, tokenHash: string): Promise<(SessionPrincipalRow & { expires_at: Date }) | undefined> {
  return db('sessions as s')
    .join('users as u', 'u.id', 's.user_id')
    .where('s.token_hash', tokenHash)
    .where('s.expires_at', '>', db.fn.now())
    .where('u.enabled', true)
    .first('s.id as session_id', 's.csrf_token', 's.expires_at', 'u.id as user_id', 'u.username', 'u.role');
}

export async function deleteSession(db: Db, token: string): Promise<void> {
  await db('sessions').where({ token_hash: hashSecret(token) }).delete();
}
