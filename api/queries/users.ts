import type { Db } from '../../lib/db';
import type { Role } from '../route';

/** A user as the API shows it: never the password hash. */
export interface UserRow {
  id: string;
  username: string;
  email: string | null;
  full_name: string | null;
  user_type: string;
  role: Role;
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
  last_login_at: Date | null;
}

export interface UserCredentialsRow extends UserRow {
  password_hash: string | null;
}

/** Columns of a user that may leave the server. */
const userColumns = ['id', 'username', 'email', 'full_name', 'user_type', 'role', 'enabled', 'created_at', 'updated_at', 'last_login_at'] as const;

export interface NewUser {
  username: string;
  email: string;
  passwordHash: string;
  full_name?: string | null;
  role?: Role;
  user_type?: string;
}

/** Fields an update may change; passwordHash replaces the password. */
export interface UserChanges {
  username?: string;
  email?: string | null;
  full_name?: string | null;
  role?: Role;
  enabled?: boolean;
  passwordHash?: string;
}

/** Users by username (the unique index on username orders them); a page of them when `page` is given. */
export async function listUsers(db: Db, page?: { limit: number; offset: number }): Promise<UserRow[]> {
  const query = db('users').select([...userColumns]).orderBy([{ column: 'username', order: 'asc' }]);
  if (page) query.limit(page.limit).offset(page.offset);
  return query;
}

export async function findUser(db: Db, id: string): Promise<UserRow | undefined> {
  return db('users').select([...userColumns]).where({ id }).first();
}

/** The user with the password hash, for login and password changes only. */
export async function findUserCredentials(db: Db, by: { id: string } | { username: string }): Promise<UserCredentialsRow | undefined> {
  return db('users').select([...userColumns, 'password_hash']).where(by).first();
}

export async function insertUser(db: Db, u: NewUser): Promise<UserRow> {
  const [row] = await db('users')
    .insert({
      username: u.username,
      email: u.email,
      password_hash: u.passwordHash,
      full_name: u.full_name ?? null,
      role: u.role ?? 'read-only',
      user_type: u.user_type ?? 'local',
    })
    .returning([...userColumns]);
  return row as UserRow;
}

export async function updateUser(db: Db, id: string, changes: UserChanges): Promise<UserRow | undefined> {
  const { passwordHash, ...fields } = changes;
  const [row] = await db('users')
    .where({ id })
    .update({ ...fields, ...(passwordHash !== undefined ? { password_hash: passwordHash } : {}), updated_at: db.fn.now() })
    .returning([...userColumns]);
  return row as UserRow | undefined;
}

export async function deleteUser(db: Db, id: string): Promise<boolean> {
  return (await db('users').where({ id }).delete()) > 0;
}

export async function recordLogin(db: Db, id: string): Promise<UserRow | undefined> {
  const [row] = await db('users').where({ id }).update({ last_login_at: db.fn.now() }).returning([...userColumns]);
  return row as UserRow | undefined;
}

/** Ends the user's browser sessions (after a password change), keeping the one with keepSessionId. */
export async function endSessionsOfUser(db: Db, userId: string, keepSessionId?: string): Promise<number> {
  const q = db('sessions').where({ user_id: userId });
  if (keepSessionId) q.whereNot({ id: keepSessionId });
  return q.delete();
}
