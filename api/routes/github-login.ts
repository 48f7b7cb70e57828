import crypto from 'node:crypto';
import type { Context } from 'koa';
import { defineRoute, Reply, type RequestContext, type RouteDef } from '../route';
import { ApiError, conflict, forbidden, invalidField, unauthorized } from '../errors';
import { errorBody, NO_CONTROL_CHARACTERS } from '../schemas';
import { signInExternalUser } from '../queries/external-identities';
import { writeAuditEntry } from '../queries/audit-log';
import { authorizeUrl, exchangeCode, fetchGithubProfile, fetchOrganizations, GithubRefusedError, GithubUnavailableError } from '../github-oauth';
import { auditRefusedLogin } from '../login-audit';
import { configuredRole, signInProviderConfig } from '../login-config';
import { GITHUB_OAUTH_DEFAULTS, type GithubOAuthConfig } from '../../lib/config-github-oauth';
import { openSession } from '../sign-in';

/** The state of one sign-in in flight: HttpOnly, SameSite=Lax, sent only to the GitHub routes, 10 minutes. */
export const OAUTH_STATE_COOKIE = 'ringmaster_oauth_state';
const STATE_COOKIE_PATH = '/api/v1/auth/github';
const STATE_TTL_MS = 10 * 60 * 1000;
/**
 * After a redirect sign-in there is no JSON answer to carry the CSRF token, so it is set as a cookie
 * that the page's script may read (not HttpOnly) and echo in x-csrf-token; it is no credential alone.
 */
export const CSRF_COOKIE = 'ringmaster_csrf_token';

const redirect = { description: 'Redirect (Location header)', contentType: '' };

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

function callbackUrl(rc: RequestContext, config: GithubOAuthConfig): string {
  if (config.redirect_url) return config.redirect_url;
  const base = (rc.deps.config.publicUrl || `${rc.koa.protocol}://${rc.koa.host}`).replace(/\/+$/, '');
  return `${base}/api/v1/auth/github/callback`;
}

function setStateCookie(ctx: Context, value: string, expires: Date): void {
  ctx.cookies.set(OAUTH_STATE_COOKIE, value, { httpOnly: true, sameSite: 'lax', path: STATE_COOKIE_PATH, expires, secure: ctx.secure, overwrite: true });
}

async function refuse(rc: RequestContext, username: string | null, reason: string, error: ApiError, detail?: string): Promise<never> {
  await auditRefusedLogin(rc, 'github', { username, reason, detail });
  throw error;
}

function unavailable(err: unknown): never {
  if (err instanceof GithubUnavailableError) {
    console.error(`GitHub sign-in: ${err.message}`);
    throw new ApiError('SERVICE_UNAVAILABLE', `${err.message}; try again later`, undefined, 502);
  }
  throw err;
}

interface CallbackQuery {
  code?: string;
  state?: string;
  error?: string;
  error_description?: string;
}

export const githubLoginRoutes: RouteDef[] = [
  defineRoute({
    method: 'GET',
    path: '/api/v1/auth/github',
    summary: 'Start GitHub OAuth login',
    tag: 'auth',
    access: 'always-public',
    responses: { 302: redirect, 404: errorBody, 503: errorBody },
    handler: async (_input, rc) => {
      const config = await signInProviderConfig(rc.deps.config.configFile, 'github_oauth', 'GitHub login');
      const state = crypto.randomBytes(32).toString('base64url');
      setStateCookie(rc.koa, state, new Date(Date.now() + STATE_TTL_MS));
      return new Reply(302, undefined, { location: authorizeUrl(config, state, callbackUrl(rc, config)), 'cache-control': 'no-store' });
    },
  }),
  defineRoute<{}, CallbackQuery>({
    method: 'GET',
    path: '/api/v1/auth/github/callback',
    summary: 'Complete GitHub OAuth login',
    tag: 'auth',
    access: 'always-public',
    query: {
      type: 'object',
      properties: {
        code: { type: 'string', minLength: 1, maxLength: 512, pattern: NO_CONTROL_CHARACTERS },
        state: { type: 'string', minLength: 1, maxLength: 512, pattern: NO_CONTROL_CHARACTERS },
        error: { type: 'string', maxLength: 200, pattern: NO_CONTROL_CHARACTERS },
        error_description: { type: 'string', maxLength: 2000, pattern: NO_CONTROL_CHARACTERS },
        error_uri: { type: 'string', maxLength: 2000, pattern: NO_CONTROL_CHARACTERS },
      },
    },
    responses: { 302: redirect, 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 409: errorBody, 502: errorBody, 503: errorBody },
    handler: async ({ query }, rc) => {
      const config = await signInProviderConfig(rc.deps.config.configFile, 'github_oauth', 'GitHub login');
      const expectedState = rc.koa.cookies.get(OAUTH_STATE_COOKIE);
      // A state is good for one try, whatever the outcome.
      if (expectedState) setStateCookie(rc.koa, '', new Date(0));

      if (query.error) {
        const message = `GitHub sign-in was not completed: ${query.error}${query.error_description ? ` (${query.error_description})` : ''}`;
        return refuse(rc, null, query.error === 'access_denied' ? 'access_denied' : 'github_error', unauthorized(message), query.error);
      }
      if (!query.state || !expectedState || !sameSecret(query.state, expectedState)) {
        const why = !expectedState ? 'no sign-in is in progress in this browser (the state cookie is missing or expired)' : 'does not match the sign-in started in this browser';
        return refuse(rc, null, 'bad_state', invalidField('query.state', why));
      }
      if (!query.code) throw invalidField('query.code', 'is required');

      const redirectUri = callbackUrl(rc, config);
      let token: string;
      try {
        token = await exchangeCode(config, query.code, redirectUri);
      } catch (err) {
        if (err instanceof GithubRefusedError) return refuse(rc, null, 'code_exchange_refused', unauthorized(err.message), err.code);
        return unavailable(err);
      }
      const profile = await fetchGithubProfile(config, token).catch(unavailable);
      if (config.allowed_organizations?.length) {
        const orgs = (await fetchOrganizations(config, token).catch(unavailable)).map((o) => o.toLowerCase());
        if (!config.allowed_organizations.some((allowed) => orgs.includes(allowed.toLowerCase()))) {
          return refuse(rc, profile.login, 'not_in_allowed_organization', forbidden(`GitHub user ${profile.login} is in none of the organizations allowed to sign in here`));
        }
      }

      const signIn = await signInExternalUser(rc.db, {
        provider: 'github',
        externalId: profile.id,
        externalName: profile.login,
        usernameCandidates: [profile.login, `github-${profile.login}`, `github-${profile.id}`],
        email: profile.email,
        fullName: profile.name,
        newUserRole: configuredRole(config.default_role) ?? 'read-only',
      });
      if (!signIn.ok && signIn.reason === 'disabled') return refuse(rc, profile.login, 'disabled', forbidden('this account is disabled'));
      if (!signIn.ok) throw conflict(`no free username for GitHub user ${profile.login}; an admin must rename a user`);

      const session = await openSession(rc.koa, rc.db, signIn.user.id);
      rc.koa.cookies.set(CSRF_COOKIE, session.csrfToken, { httpOnly: false, sameSite: 'lax', path: '/', expires: session.expiresAt, secure: rc.koa.secure, overwrite: true });
      await writeAuditEntry(rc.db, {
        actorKind: 'user',
        actorId: signIn.user.id,
        actorName: signIn.user.username,
        action: 'GET /api/v1/auth/github/callback',
        targetKind: 'user',
        targetId: signIn.user.id,
        details: { provider: 'github', github_login: profile.login, github_id: profile.id, created: signIn.created },
        remoteAddr: rc.remoteAddr || null,
      });
      return new Reply(302, undefined, { location: config.after_login_path ?? GITHUB_OAUTH_DEFAULTS.after_login_path, 'cache-control': 'no-store' });
    },
  }),
];
