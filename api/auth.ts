import crypto from 'node:crypto';
import type { Context } from 'koa';
import type { Db } from '../lib/db';
import type { RingmasterConfig } from '../lib/config';
import { liveConfigFile } from '../lib/live-config-file';
import { forbidden, unauthorized } from './errors';
import { authenticateApiKeyHash, hashSecret, LAST_USED_RESOLUTION_SECONDS, type ApiKeyRow } from './queries/api-keys';
import { findSessionByHash, SESSION_COOKIE, type SessionPrincipalRow } from './queries/sessions';
import { credentialCacheOf } from './credential-cache';
import type { Access, AppDeps, Principal, RouteDef } from './route';

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Whether reads need a signed-in caller: the environment says so, or the config file does (read live). */
export async function readsRequireSignIn(config: Pick<RingmasterConfig, 'requireAuthForReads' | 'configFile'>): Promise<boolean> {
  return config.requireAuthForReads || (await liveConfigFile(config.configFile).current()).require_auth_for_reads === true;
}

/**
 * Reads the caller from `Authorization: Bearer <key>` or the session cookie. A bad credential is a 401. Keys and
 * sessions are looked up through the credential cache (credential-cache.ts: never past a write of this process, at
 * most `authCacheMs` behind other processes' writes).
 */
export async function resolvePrincipal(ctx: Context, deps: Pick<AppDeps, 'db' | 'config'>): Promise<Principal | undefined> {
  const header = ctx.get('authorization');
  if (header) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const token = match?.[1] ?? basicAuthApiKey(header, ctx.method);
    if (!token) throw unauthorized('the Authorization header must be "Bearer <api-key>"');
    const key = await liveApiKey(deps, token);
    if (!key) throw unauthorized('invalid or revoked API key');
    return { kind: 'api_key', id: key.id, name: key.name, role: key.role, userId: key.user_id, viaCookie: false };
  }
  const cookie = ctx.cookies.get(SESSION_COOKIE);
  if (cookie) {
    const session = await liveSession(deps, cookie);
    if (!session) return undefined;
    const principal: Principal = { kind: 'user', id: session.user_id, name: session.username, role: session.role, userId: session.user_id, viaCookie: true };
    (principal as Principal & { csrfToken?: string }).csrfToken = session.csrf_token;
    return principal;
  }
  return undefined;
}

/**
 * A live key's row, marked used at most once a minute: a remembered row is looked up again (and so marked) once its
 * `last_used_at` is LAST_USED_RESOLUTION_SECONDS old, as every lookup did before there was a cache.
 */
function liveApiKey({ db, config }: Pick<AppDeps, 'db' | 'config'>, secret: string): Promise<ApiKeyRow | undefined> {
  const keyHash = hashSecret(secret);
  return credentialCacheOf<ApiKeyRow>(db, 'api-keys', config.authCacheMs).get(
    keyHash,
    () => authenticateApiKeyHash(db, keyHash),
    (key, now) => key.last_used_at !== null && now - new Date(key.last_used_at).getTime() < LAST_USED_RESOLUTION_SECONDS * 1000,
  );
}

/** A live session's row (its user enabled), never one past its expiry. */
function liveSession({ db, config }: Pick<AppDeps, 'db' | 'config'>, token: string): Promise<SessionPrincipalRow | undefined> {
  const tokenHash = hashSecret(token);
  return credentialCacheOf<SessionPrincipalRow & { expires_at: Date }>(db, 'sessions', config.authCacheMs).get(
    tokenHash,
    () => findSessionByHash(db, tokenHash),
    (session, now) => new Date(session.expires_at).getTime() > now,
  );
}

/**
 * An API key sent as the password of HTTP Basic auth, accepted for reads only: that is how a Nix
 * client authenticates to a binary cache (a netrc entry). Browsers replay Basic credentials on their
 * own, so mutations never accept them.
 */
function basicAuthApiKey(header: string, method: string): string | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header);
  if (!match || !READ_METHODS.has(method)) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 && colon < decoded.length - 1 ? decoded.slice(colon + 1) : undefined;
}

/** Whether two secrets are equal, in time that does not tell how much of them matched. */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

export function holdsRole(principal: Principal, access: Access): boolean {
  if (access === 'public' || access === 'always-public' || access === 'user') return true;
  return principal.role === 'admin' || principal.role === access;
}

/** Enforces the route's declared access. Throws 401 or 403. */
export function authorize(route: RouteDef, principal: Principal | undefined, ctx: Context, requireAuthForReads: boolean): void {
  if (route.access === 'always-public') return;
  if (route.access === 'public') {
    if (requireAuthForReads && !principal) throw unauthorized('this server requires an API key for reads');
    return;
  }
  if (!principal) throw unauthorized();
  if (principal.viaCookie && !READ_METHODS.has(route.method)) {
    const expected = (principal as Principal & { csrfToken?: string }).csrfToken ?? '';
    const sent = ctx.get('x-csrf-token');
    if (!sent || !sameSecret(sent, expected)) throw forbidden('a request authenticated by cookie must send the x-csrf-token header');
  }
  if (!holdsRole(principal, route.access)) {
    throw forbidden(`this action needs the role "${route.access}"; your role is "${principal.role}"`);
  }
}
