import { definePage, type PageInput } from '../page';
import { Layout } from '../layout';
import { liveConfigFile } from '../../../lib/live-config-file';
import type { AppDeps } from '../../route';

/** The other ways of signing in that this server offers: configured (and enabled) in the config file, and routed. */
export interface SignInProviders {
  github: boolean;
  ldap: boolean;
}

export async function signInProviders(deps: AppDeps, viewer: PageInput['viewer']): Promise<SignInProviders> {
  const settings = await liveConfigFile(deps.config.configFile).current();
  const configured = (section: { enabled?: boolean } | undefined) => section !== undefined && section.enabled !== false;
  return {
    github: configured(settings.github_oauth) && viewer.may('GET', '/api/v1/auth/github'),
    ldap: configured(settings.ldap) && viewer.may('POST', '/auth/ldap'),
  };
}

/** Where to go after signing in: only a path of this site, never another origin. */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/(?!\/)[^\s\\]*$/.test(next) ? next : '/';
}

/** The sign-in form: a plain POST that works without script; GitHub and LDAP appear when they are configured. */
export function LoginForm({ input, providers, error, username }: { input: PageInput; providers: SignInProviders; error?: string; username?: string }) {
  const next = safeNext(input.query.next);
  const { github, ldap } = providers;
  return (
    <Layout title="Sign in" viewer={input.viewer} current="/login">
      <form method="post" action={`/login?next=${encodeURIComponent(next)}`} class="card narrow">
        {error ? (
          <p class="form-error" role="alert">
            {error}
          </p>
        ) : null}
        <p class="field">
          <label for="username">Username</label>
          <input id="username" name="username" autocomplete="username" required value={username} />
        </p>
        <p class="field">
          <label for="password">Password</label>
          <input id="password" name="password" type="password" autocomplete="current-password" required />
        </p>
        <button type="submit">Sign in</button>
      </form>
      {github ? (
        <p>
          <a class="button" href="/api/v1/auth/github">
            Sign in with GitHub
          </a>
        </p>
      ) : null}
      {ldap ? (
        <form class="api-form card narrow" data-api-method="POST" data-api-path="/auth/ldap" data-after={next} hidden aria-label="Sign in with LDAP">
          <h2>Directory (LDAP)</h2>
          <p class="field">
            <label for="ldap-username">Username</label>
            <input id="ldap-username" name="username" required />
          </p>
          <p class="field">
            <label for="ldap-password">Password</label>
            <input id="ldap-password" name="password" type="password" required />
          </p>
          <button type="submit">Sign in with LDAP</button>
          <p class="form-error" role="alert" />
        </form>
      ) : null}
    </Layout>
  );
}

export const loginPage = definePage({
  path: '/login',
  alwaysPublic: true,
  async render(input) {
    if (input.viewer.principal) return { redirect: safeNext(input.query.next) };
    return <LoginForm input={input} providers={await signInProviders(input.deps, input.viewer)} />;
  },
});
