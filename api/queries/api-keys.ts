import crypto from 'node:crypto';
import type { Db } from '../../lib/db';
import type { Role } from '../route';

export const API_KEY_PREFIX = 'rmk_';

export interface ApiKeyRow {
  id: string;
  name: string;
  role: Role;
  user_id: string | null;
  created_at: Date;
  last_used_at: Date | null;
}

export function hashSecret(secret: string): string {
  return crypto.createHash('sha256').update(secret).digest('hex');
}

/** A new key: 32 random bytes, base64url, with a recognizable prefix. Only its SHA-256 is stored. */
export function generateApiKey(): string {
  return API_KEY_PREFIX + crypto.randomBytes(32).toString('base64url');
}

const columns = ['id', 'name', 'role', 'user_id', 'created_at', 'last_used_at'] as const;

export async function createApiKey(db: Db, input: { name: string; role: Role; userId?: string | null }): Promise<ApiKeyRow & { key: string }> {
  const key = generateApiKey();
  const [row] = await db('api_keys')
    .insert({ name: input.name, role: input.role, user_id: input.userId ?? null, key_hash: hashSecret(key), key_prefix: key.slice(0, 12) })
    .returning([...columns]);
  return { ...(row as ApiKeyRow), key };
}

/** Live keys, oldest first (the partial index of live keys orders them); a page of them when `page` is given. */
export async function listApiKeys(db: Db, userId?: string, page?: { limit: number; offset: number }): Promise<ApiKeyRow[]> {
  const q = db('api_keys').select([...columns]).whereNull('revoked_at').orderBy([{ column: 'created_at', order: 'asc' }, { column: 'id', order: 'asc' }]);
  if (userId !== undefined) q.where({ user_id: userId });
  if (page) q.limit(page.limit).offset(page.offset);
  return q;
}

export async function findApiKey(db: Db, id: string): Promise<ApiKeyRow | undefined> {
  return db('api_keys').select([...columns]).where({ id }).whereNull('revoked_at').first();
}

export async function revokeApiKey(db: Db, id: string): Promise<boolean> {
  const n = await db('api_keys').where({ id }).whereNull('revoked_at').update({ revoked_at: db.fn.now() });
  return n > 0;
}

/**
 * How often a key's use is recorded: last_used_at is at most this old while the key is in use. Writing it on every
 * request made every authenticated request a write, and concurrent requests with one key queued on its row lock.
 */
export const LAST_USED_RESOLUTION_SECONDS = 60;

/**
 * The key's row if the presented secret (given by its SHA-256, hashSecret) is a live key; marks it used (see
 * LAST_USED_RESOLUTION_SECONDS).
 */
export async function authenticateApiKeyHash(db: Db, keyHash: string): Promise<ApiKeyRow | undefined> {
  const r = await db.raw(
    `WITH live AS (SELECT ${columns.join(', ')} FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL),
          used AS (UPDATE api_keys SET last_used_at = now()
                   WHERE id = (SELECT id FROM live) AND revoked_at IS NULL
                     AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => ?))
                   RETURNING last_used_at)
     SELECT ${columns.filter((c) => c !== 'last_used_at').join(', ')}, coalesce((SELECT last_used_at FROM used), live.last_used_at) AS last_used_at FROM live`,
    [keyHash, LAST_USED_RESOLUTION_SECONDS],
  );
  return r.rows[0] as ApiKeyRow | undefined;
}
