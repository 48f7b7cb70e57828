/**
 * The `github_oauth` section of the server config file: the OAuth app behind
 * `GET /api/v1/auth/github` and its callback. Every GitHub URL is configurable, so GitHub Enterprise
 * works (`https://HOST/login/oauth/authorize`, `https://HOST/login/oauth/access_token`,
 * `https://HOST/api/v3`), and so do tests against a local stand-in.
 */
export interface GithubOAuthConfig {
  client_id: string;
  client_secret: string;
  /** false keeps the section but turns GitHub login off (404). Default true. */
  enabled?: boolean;
  authorize_url?: string;
  token_url?: string;
  api_url?: string;
  /** The callback URL registered with the OAuth app. Default: <public URL or request origin>/api/v1/auth/github/callback. */
  redirect_url?: string;
  /** Where the browser goes after signing in: a path on this server. Default `/`. */
  after_login_path?: string;
  /** When set, only members of one of these organizations may sign in (asks GitHub for /user/orgs). */
  allowed_organizations?: string[];
  /** Role of a user created by a GitHub sign-in. Default read-only. */
  default_role?: string;
  /** Seconds for each request to GitHub. Default 10. */
  timeout_seconds?: number;
}

export const GITHUB_OAUTH_DEFAULTS = {
  authorize_url: 'https://github.com/login/oauth/authorize',
  token_url: 'https://github.com/login/oauth/access_token',
  api_url: 'https://api.github.com',
  after_login_path: '/',
  timeout_seconds: 10,
} as const;

export function githubOAuthConfigSchema(roles: readonly string[]) {
  const text = { type: 'string', minLength: 1, maxLength: 4096 };
  const httpUrl = { type: 'string', pattern: '^https?://', maxLength: 2048 };
  return {
    type: 'object',
    additionalProperties: false,
    required: ['client_id', 'client_secret'],
    properties: {
      client_id: text,
      client_secret: text,
      enabled: { type: 'boolean' },
      authorize_url: httpUrl,
      token_url: httpUrl,
      api_url: httpUrl,
      redirect_url: httpUrl,
      after_login_path: { type: 'string', maxLength: 2048, pattern: '^/(?![/\\\\])' },
      allowed_organizations: { type: 'array', maxItems: 100, items: text },
      default_role: { type: 'string', enum: [...roles] },
      timeout_seconds: { type: 'integer', minimum: 1, maximum: 120 },
    },
  };
}
