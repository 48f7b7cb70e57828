import type { Db } from '../../lib/db';
import type { Role } from '../route';
import { findUser, type UserRow } from './users';

/** A person as an outside identity provider (GitHub, LDAP) describes them at sign-in. */
export interface ExternalProfile {
  provider: 'github' | 'ldap';
  /** Stable id at the provider: GitHub's numeric user id, the LDAP username. */
  externalId: string;
  /** A readable name at the provider (GitHub login, LDAP DN). */
  externalName: string;
  /** Usernames to try for a new user, in order; the first free one is taken. */
  usernameCandidates: string[];
  email: string | null;
  fullName: string | null;
  /** The role of a new user. */
  newUserRole: Role;
  /** When set, the role the user gets on every sign-in (LDAP role mapping). */
  enforcedRole?: Role;
}

export type ExternalSignIn = { ok: true; user: UserRow; created: boolean } | { ok: false; reason: 'disabled' | 'no_free_username'; user?: UserRow };

async function emailFree(db: Db, email: string | null, exceptUserId?: string): Promise<boolean> {
  if (email === null) return false;
  const q = db('users').whereRaw('lower(email) = lower(?)', [email]);
  if (exceptUserId) q.whereNot({ id: exceptUserId });
  return (await q.first('id')) === undefined;
}

/**
 * Finds the user linked to the provider's id, or creates one (user_type = provider) and links it.
 * Updates name, email (unless another user has it) and, when enforced, the role; records the login.
 * A disabled user is refused before anything changes. Never links to an existing account by name or
 * email: a new user takes the first free username candidate and no email that is already taken.
 */
export async function signInExternalUser(db: Db, profile: ExternalProfile): Promise<ExternalSignIn> {
  return db.transaction(async (trx) => {
    const identity = await trx('user_identities').where({ provider: profile.provider, external_id: profile.externalId }).forUpdate().first('id', 'user_id');
    if (identity) {
      const existing = await findUser(trx, identity.user_id);
      if (!existing) throw new Error(`user_identities ${identity.id} names no user`);
      if (!existing.enabled) return { ok: false, reason: 'disabled', user: existing };
      const changes: Record<string, unknown> = { full_name: profile.fullName ?? existing.full_name, last_login_at: trx.fn.now(), updated_at: trx.fn.now() };
      if (profile.email && profile.email !== existing.email && (await emailFree(trx, profile.email, existing.id))) changes.email = profile.email;
      if (profile.enforcedRole) changes.role = profile.enforcedRole;
      await trx('users').where({ id: existing.id }).update(changes);
      await trx('user_identities').where({ id: identity.id }).update({ external_name: profile.externalName });
      return { ok: true, user: (await findUser(trx, existing.id))!, created: false };
    }
    let username: string | undefined;
    for (const candidate of profile.usernameCandidates) {
      if (!(await trx('users').where({ username: candidate }).first('id'))) {
        username = candidate;
        break;
      }
    }
    if (!username) return { ok: false, reason: 'no_free_username' };
    const [row] = await trx('users')
      .insert({
        username,
        email: (await emailFree(trx, profile.email)) ? profile.email : null,
        full_name: profile.fullName,
        password_hash: null,
        user_type: profile.provider,
        role: profile.enforcedRole ?? profile.newUserRole,
        last_login_at: trx.fn.now(),
      })
      .returning('id');
    await trx('user_identities').insert({ user_id: row.id, provider: profile.provider, external_id: profile.externalId, external_name: profile.externalName });
    return { ok: true, user: (await findUser(trx, row.id))!, created: true };
  });
}
