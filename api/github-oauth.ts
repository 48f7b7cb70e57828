import { GITHUB_OAUTH_DEFAULTS, type GithubOAuthConfig } from '../lib/config-github-oauth';

/**
 * The conversation with GitHub (or GitHub Enterprise, or a test's stand-in) behind the OAuth web flow
 * ("Authorizing OAuth apps" in GitHub's docs): the authorize URL, the code exchange, and the reads of
 * /user, /user/emails and /user/orgs. Every URL comes from the config.
 */

export interface GithubProfile {
  id: string;
  login: string;
  name: string | null;
  /** The primary verified email, else any verified one, else null. */
  email: string | null;
}

/** GitHub answered, and said no (a used or expired code, wrong client credentials). */
export class GithubRefusedError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** GitHub could not be asked, or answered something that is not its API (down, 5xx, not JSON). */
export class GithubUnavailableError extends Error {}

const urls = (config: GithubOAuthConfig) => ({
  authorize: config.authorize_url ?? GITHUB_OAUTH_DEFAULTS.authorize_url,
  token: config.token_url ?? GITHUB_OAUTH_DEFAULTS.token_url,
  api: (config.api_url ?? GITHUB_OAUTH_DEFAULTS.api_url).replace(/\/+$/, ''),
});

const timeoutMs = (config: GithubOAuthConfig) => (config.timeout_seconds ?? GITHUB_OAUTH_DEFAULTS.timeout_seconds) * 1000;

/** Scopes asked for: the profile and emails, plus organizations when sign-in is limited to some. */
export function scopesFor(config: GithubOAuthConfig): string {
  return ['read:user', 'user:email', ...(config.allowed_organizations?.length ? ['read:org'] : [])].join(' ');
}

export function authorizeUrl(config: GithubOAuthConfig, state: string, redirectUri: string): string {
  const url = new URL(urls(config).authorize);
  url.searchParams.set('client_id', config.client_id);
  url.searchParams.set('redirect_uri', redirectUri);
  url.searchParams.set('scope', scopesFor(config));
  url.searchParams.set('state', state);
  url.searchParams.set('allow_signup', 'false');
  return url.toString();
}

async function call(config: GithubOAuthConfig, what: string, url: string, init: RequestInit): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(timeoutMs(config)) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new GithubUnavailableError(`GitHub is unreachable (${what}): ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  const text = await res.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new GithubUnavailableError(`GitHub answered ${what} with HTTP ${res.status} and no JSON`);
  }
  if (!res.ok) throw new GithubUnavailableError(`GitHub answered ${what} with HTTP ${res.status}${typeof (body as { message?: unknown })?.message === 'string' ? `: ${(body as { message: string }).message}` : ''}`);
  return body;
}

/** Exchanges the callback's code for an access token. */
export async function exchangeCode(config: GithubOAuthConfig, code: string, redirectUri: string): Promise<string> {
  const form = new URLSearchParams({ client_id: config.client_id, client_secret: config.client_secret, code, redirect_uri: redirectUri });
  const body = (await call(config, 'the code exchange', urls(config).token, {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'ringmaster' },
    body: form.toString(),
  })) as { access_token?: unknown; error?: unknown; error_description?: unknown };
  // GitHub answers a refused exchange with 200 and an error field.
  if (typeof body.error === 'string') {
    throw new GithubRefusedError(body.error, `GitHub refused the code: ${body.error}${typeof body.error_description === 'string' ? ` (${body.error_description})` : ''}`);
  }
  if (typeof body.access_token !== 'string' || body.access_token === '') throw new GithubUnavailableError('GitHub answered the code exchange without an access token');
  return body.access_token;
}

const apiGet = (config: GithubOAuthConfig, token: string, path: string) =>
  call(config, `GET ${path}`, `${urls(config).api}${path}`, {
    headers: { accept: 'application/vnd.github+json', authorization: `Bearer ${token}`, 'user-agent': 'ringmaster', 'x-github-api-version': '2022-11-28' },
  });

interface GithubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
}

function chooseEmail(emails: unknown): string | null {
  if (!Array.isArray(emails)) return null;
  const verified = (emails as GithubEmail[]).filter((e) => e && typeof e.email === 'string' && e.verified === true);
  return (verified.find((e) => e.primary === true) ?? verified[0])?.email ?? null;
}

/** The signed-in GitHub user and their primary verified email. */
export async function fetchGithubProfile(config: GithubOAuthConfig, token: string): Promise<GithubProfile> {
  const user = (await apiGet(config, token, '/user')) as { id?: unknown; login?: unknown; name?: unknown };
  if ((typeof user.id !== 'number' && typeof user.id !== 'string') || typeof user.login !== 'string' || user.login === '') {
    throw new GithubUnavailableError('GitHub answered GET /user without an id and login');
  }
  const emails = await apiGet(config, token, '/user/emails');
  return { id: String(user.id), login: user.login, name: typeof user.name === 'string' && user.name !== '' ? user.name : null, email: chooseEmail(emails) };
}

/** Logins of the organizations the user belongs to (as far as the token may see). */
export async function fetchOrganizations(config: GithubOAuthConfig, token: string): Promise<string[]> {
  const orgs = await apiGet(config, token, '/user/orgs?per_page=100');
  if (!Array.isArray(orgs)) throw new GithubUnavailableError('GitHub answered GET /user/orgs without a list');
  return orgs.map((o: { login?: unknown }) => o?.login).filter((l): l is string => typeof l === 'string');
}
