import { defineRoute, type RequestContext, type Role, type RouteDef } from '../route';
import { limitLoginAttempt } from '../login-rate-limit';
import { ApiError, conflict, unauthorized } from '../errors';
import { errorBody, NO_CONTROL_CHARACTERS } from '../schemas';
import { signInExternalUser } from '../queries/external-identities';
import { authenticateWithLdap, LdapUnavailableError, type LdapIdentity } from '../ldap-directory';
import { auditRefusedLogin } from '../login-audit';
import { configuredRole, signInProviderConfig } from '../login-config';
import type { LdapConfig } from '../../lib/config-ldap';
import { LOGIN_REFUSED, openSession } from '../sign-in';
import { userSchema } from './users';

/** Hydra's role_mapping: the first group listed in the config that the user belongs to gives the role. */
function mappedRole(config: LdapConfig, identity: LdapIdentity): Role | undefined {
  if (!config.role_mapping || Object.keys(config.role_mapping).length === 0) return undefined;
  const group = identity.mappedGroups[0];
  return (group && configuredRole(config.role_mapping[group])) || configuredRole(config.default_role) || 'read-only';
}

async function refuse(rc: RequestContext, username: string, reason: string, detail?: string): Promise<never> {
  await auditRefusedLogin(rc, 'ldap', { username, reason, detail });
  throw unauthorized(LOGIN_REFUSED);
}

export const ldapLoginRoutes: RouteDef[] = [
  defineRoute<{}, {}, { username: string; password: string }>({
    method: 'POST',
    path: '/auth/ldap',
    summary: 'Authenticate via LDAP bind (sets session cookie)',
    tag: 'auth',
    access: 'always-public',
    body: {
      type: 'object',
      required: ['username', 'password'],
      additionalProperties: false,
      properties: { username: { type: 'string', minLength: 1, maxLength: 256, pattern: NO_CONTROL_CHARACTERS }, password: { type: 'string', minLength: 1, maxLength: 1024 } },
    },
    responses: {
      200: { type: 'object', required: ['user', 'csrf_token'], properties: { user: userSchema, csrf_token: { type: 'string' } } },
      400: errorBody,
      401: errorBody,
      404: errorBody,
      409: errorBody,
      429: errorBody,
      503: errorBody,
    },
    handler: async ({ body }, rc) => {
      const attempt = await limitLoginAttempt(rc, 'ldap', body.username);
      const config = await signInProviderConfig(rc.deps.config.configFile, 'ldap', 'LDAP login');
      let outcome;
      try {
        outcome = await authenticateWithLdap(config, body.username, body.password);
      } catch (err) {
        if (err instanceof LdapUnavailableError) {
          // The cause is for the operator (it names hosts, DNs and files), not for an anonymous caller.
          console.error(`LDAP login of ${JSON.stringify(body.username)}: ${err.message}`);
          throw new ApiError('SERVICE_UNAVAILABLE', 'the LDAP server is unavailable; try again later');
        }
        throw err;
      }
      if (!outcome.ok) {
        attempt.refused();
        return refuse(rc, body.username, outcome.reason, outcome.detail);
      }
      const { identity } = outcome;
      const signIn = await signInExternalUser(rc.db, {
        provider: 'ldap',
        externalId: identity.username,
        externalName: identity.dn,
        usernameCandidates: [identity.username, `ldap-${identity.username}`],
        email: identity.email,
        fullName: identity.fullName,
        newUserRole: configuredRole(config.default_role) ?? 'read-only',
        enforcedRole: mappedRole(config, identity),
      });
      if (!signIn.ok && signIn.reason === 'disabled') {
        attempt.refused();
        return refuse(rc, body.username, 'disabled');
      }
      if (!signIn.ok) throw conflict(`neither "${identity.username}" nor "ldap-${identity.username}" is free as a username; an admin must rename a user`);
      const { csrfToken } = await openSession(rc.koa, rc.db, signIn.user.id);
      rc.audit = { targetKind: 'user', targetId: signIn.user.id, details: { provider: 'ldap', username: signIn.user.username, created: signIn.created, role: signIn.user.role } };
      return { user: signIn.user, csrf_token: csrfToken };
    },
  }),
];
