import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type ApiResponse, type TestStack } from '../support/stack';
import { startGithubStandIn, type GithubStandIn, type GithubStandInUser } from '../support/github-stand-in';
import { SESSION_COOKIE } from '../../api/queries/sessions';
import { CSRF_COOKIE, OAUTH_STATE_COOKIE } from '../../api/routes/github-login';
import type { GithubOAuthConfig } from '../../lib/config-github-oauth';
import { freePort } from '../../lib/processes';

const octocat = (): GithubStandInUser => ({
  id: 583231,
  login: 'octocat',
  name: 'The Octocat',
  emails: [
    { email: 'unverified-primary@example.org', primary: true, verified: false },
    { email: 'octocat@users.noreply.example.org', primary: false, verified: true },
  ],
  orgs: ['github'],
});

function cookieFrom(res: ApiResponse, name: string): string | undefined {
  return res.headers.getSetCookie().find((c) => c.startsWith(`${name}=`));
}

describe('GitHub sign-in (GET /api/v1/auth/github and its callback) against a GitHub stand-in', () => {
  let stack: TestStack;
  let github: GithubStandIn;

  const configure = async (section: Partial<GithubOAuthConfig> | null) => {
    const oauth = { client_id: github.clientId, client_secret: github.clientSecret, authorize_url: github.authorizeUrl, token_url: github.tokenUrl, api_url: github.apiUrl, ...section };
    const res = await stack.request('PUT', '/api/v1/admin/config', { key: stack.adminKey, body: { contents: JSON.stringify(section === null ? {} : { github_oauth: oauth }) } });
    assert.equal(res.status, 200, res.text);
  };
  const counts = async () => {
    const count = async (table: string) => Number((await stack.db(table).count<{ n: string }[]>('* as n'))[0].n);
    return { users: await count('users'), sessions: await count('sessions'), identities: await count('user_identities') };
  };

  /** What a browser does up to GitHub's redirect back: start, authorize at GitHub; answers the callback path and the state cookie. */
  const startAndAuthorize = async () => {
    const start = await stack.request('GET', '/api/v1/auth/github');
    assert.equal(start.status, 302, start.text);
    const stateCookie = cookieFrom(start, OAUTH_STATE_COOKIE);
    assert.ok(stateCookie, 'sets the state cookie');
    const atGithub = await fetch(start.headers.get('location')!, { redirect: 'manual' });
    assert.equal(atGithub.status, 302);
    const back = new URL(atGithub.headers.get('location')!);
    assert.equal(back.origin, stack.url, 'GitHub sends the browser back to this server');
    return { start, stateCookie, callbackPath: `${back.pathname}${back.search}`, back };
  };
  const callback = (path: string, stateCookie: string | undefined) =>
    stack.request('GET', path, { headers: stateCookie ? { cookie: stateCookie.split(';')[0] } : {} });

  before(async () => {
    [stack, github] = await Promise.all([startTestStack({ worker: false }), startGithubStandIn(octocat())]);
  });
  after(async () => {
    await stack?.stop();
    await github?.close();
  });

  it('without a github_oauth section both routes are a 404', async () => {
    await configure(null);
    for (const path of ['/api/v1/auth/github', '/api/v1/auth/github/callback?code=x&state=y']) {
      const res = await stack.request('GET', path);
      assert.equal(res.status, 404, path);
      assert.match(res.body.error, /GitHub login is not configured/);
    }
  });

  it('starting redirects to the configured authorize URL with client id, callback, scopes and a state kept in a short-lived HttpOnly SameSite=Lax cookie', async () => {
    await configure({});
    const res = await stack.request('GET', '/api/v1/auth/github');
    assert.equal(res.status, 302);
    const location = new URL(res.headers.get('location')!);
    assert.equal(`${location.origin}${location.pathname}`, github.authorizeUrl);
    assert.equal(location.searchParams.get('client_id'), github.clientId);
    assert.equal(location.searchParams.get('redirect_uri'), `${stack.url}/api/v1/auth/github/callback`);
    assert.equal(location.searchParams.get('scope'), 'read:user user:email');
    assert.ok(!res.headers.get('location')!.includes(github.clientSecret), 'the client secret never reaches the browser');
    const cookie = cookieFrom(res, OAUTH_STATE_COOKIE)!;
    assert.equal(cookie.split(';')[0], `${OAUTH_STATE_COOKIE}=${location.searchParams.get('state')}`);
    assert.ok(location.searchParams.get('state')!.length >= 40);
    assert.match(cookie, /;\s*httponly/i);
    assert.match(cookie, /;\s*samesite=lax/i);
    assert.match(cookie, /;\s*path=\/api\/v1\/auth\/github(;|$)/i);
    const expires = new Date(/expires=([^;]+)/i.exec(cookie)![1]).getTime();
    assert.ok(expires - Date.now() <= 10 * 60 * 1000 + 1000 && expires > Date.now(), 'lives at most ten minutes');
  });

  it('the callback exchanges the code, creates a github user with the verified email, sets the session cookie and redirects', async () => {
    const before = await counts();
    const { callbackPath, stateCookie } = await startAndAuthorize();
    const res = await callback(callbackPath, stateCookie);
    assert.equal(res.status, 302, res.text);
    assert.equal(res.headers.get('location'), '/');
    const session = cookieFrom(res, SESSION_COOKIE)!;
    assert.match(session, /;\s*httponly/i);
    assert.match(session, /;\s*samesite=lax/i);
    assert.match(cookieFrom(res, OAUTH_STATE_COOKIE)!, /expires=Thu, 01 Jan 1970/i, 'the state is used up');

    const me = await stack.request('GET', '/api/v1/me', { headers: { cookie: session.split(';')[0] } });
    assert.equal(me.status, 200);
    assert.equal(me.body.username, 'octocat');
    assert.equal(me.body.user_type, 'github');
    assert.equal(me.body.full_name, 'The Octocat');
    assert.equal(me.body.email, 'octocat@users.noreply.example.org', 'a verified email, never the unverified primary');
    assert.equal(me.body.role, 'read-only');
    const identity = await stack.db('user_identities').where({ provider: 'github', external_id: '583231' }).first();
    assert.equal(identity.user_id, me.body.id);
    assert.equal(identity.external_name, 'octocat');
    assert.deepEqual(await counts(), { users: before.users + 1, sessions: before.sessions + 1, identities: before.identities + 1 });

    const exchange = github.requests.filter((r) => r.url === '/login/oauth/access_token').at(-1)!;
    assert.equal(new URLSearchParams(exchange.body).get('redirect_uri'), `${stack.url}/api/v1/auth/github/callback`);

    // The CSRF token comes as a readable cookie, so the page can make mutations with the session.
    const csrf = decodeURIComponent(cookieFrom(res, CSRF_COOKIE)!.split(';')[0].split('=')[1]);
    const renamed = await stack.request('PUT', '/api/v1/me', { headers: { cookie: session.split(';')[0], 'x-csrf-token': csrf }, body: { full_name: 'Mona' } });
    assert.equal(renamed.status, 200, renamed.text);
    const audit = await stack.db('audit_log').where({ action: 'GET /api/v1/auth/github/callback', actor_id: me.body.id }).first();
    assert.equal(audit.details.github_login, 'octocat');
  });

  it('signing in again finds the user by GitHub id (a renamed GitHub login too) and updates name and email', async () => {
    github.user = { ...octocat(), login: 'octocat-renamed', name: 'Mona Lisa Octocat', emails: [{ email: 'mona@example.org', primary: true, verified: true }] };
    const before = await counts();
    const { callbackPath, stateCookie } = await startAndAuthorize();
    const res = await callback(callbackPath, stateCookie);
    assert.equal(res.status, 302, res.text);
    const after = await counts();
    assert.equal(after.users, before.users);
    assert.equal(after.identities, before.identities);
    const user = await stack.db('users').where({ user_type: 'github' }).first();
    assert.equal(user.username, 'octocat', 'the Ringmaster username stays');
    assert.equal(user.full_name, 'Mona Lisa Octocat');
    assert.equal(user.email, 'mona@example.org');
    assert.equal((await stack.db('user_identities').where({ external_id: '583231' }).first()).external_name, 'octocat-renamed');
    github.user = octocat();
  });

  it('a denied login (error=access_denied) is a 401 that creates nothing and is audited', async () => {
    github.decision = 'deny';
    try {
      const before = await counts();
      const { callbackPath, stateCookie } = await startAndAuthorize();
      const res = await callback(callbackPath, stateCookie);
      assert.equal(res.status, 401);
      assert.equal(res.body.error_code, 'UNAUTHORIZED');
      assert.match(res.body.error, /access_denied/);
      assert.equal(cookieFrom(res, SESSION_COOKIE), undefined);
      assert.deepEqual(await counts(), before);
      assert.ok(await stack.db('audit_log').where({ action: 'login_refused' }).whereRaw("details->>'reason' = 'access_denied'").first());
      const withNul = await callback('/api/v1/auth/github/callback?error=access_denied%00&state=x', undefined);
      assert.equal(withNul.status, 400);
      assert.equal(withNul.body.details[0].field, 'query.error');
      assert.deepEqual(await counts(), before);
    } finally {
      github.decision = 'approve';
    }
  });

  it('a bad state (tampered, or no state cookie) is a 400 naming query.state; the code is never exchanged and nothing is created', async () => {
    const before = await counts();
    const exchangesBefore = github.requests.filter((r) => r.url === '/login/oauth/access_token').length;
    const tampered = await startAndAuthorize();
    tampered.back.searchParams.set('state', `${tampered.back.searchParams.get('state')!.slice(0, -2)}xx`);
    const withBadState = await callback(`${tampered.back.pathname}${tampered.back.search}`, tampered.stateCookie);
    const noCookie = await startAndAuthorize();
    const withoutCookie = await callback(noCookie.callbackPath, undefined);
    const otherBrowser = await startAndAuthorize();
    const third = await startAndAuthorize();
    const crossed = await callback(otherBrowser.callbackPath, third.stateCookie);
    for (const res of [withBadState, withoutCookie, crossed]) {
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error_code, 'VALIDATION_ERROR');
      assert.equal(res.body.details[0].field, 'query.state');
    }
    assert.equal(github.requests.filter((r) => r.url === '/login/oauth/access_token').length, exchangesBefore);
    assert.deepEqual(await counts(), before);
  });

  it('a failed code exchange (a code GitHub does not know, or one used twice) is a 401 naming GitHub\'s error, and creates nothing', async () => {
    const before = await counts();
    const flow = await startAndAuthorize();
    flow.back.searchParams.set('code', 'not-a-code-github-issued');
    const bogus = await callback(`${flow.back.pathname}${flow.back.search}`, flow.stateCookie);
    assert.equal(bogus.status, 401, bogus.text);
    assert.match(bogus.body.error, /bad_verification_code/);
    assert.deepEqual(await counts(), before);

    const used = await startAndAuthorize();
    assert.equal((await callback(used.callbackPath, used.stateCookie)).status, 302);
    const replayState = await stack.request('GET', '/api/v1/auth/github');
    const replayCookie = cookieFrom(replayState, OAUTH_STATE_COOKIE)!;
    const replay = new URL(used.back);
    replay.searchParams.set('state', new URL(replayState.headers.get('location')!).searchParams.get('state')!);
    const again = await callback(`${replay.pathname}${replay.search}`, replayCookie);
    assert.equal(again.status, 401);
    assert.match(again.body.error, /bad_verification_code/);
  });

  it('a GitHub that is down (503s, or nothing listening) is a 502 with a clear error, and nothing is created', async () => {
    const before = await counts();
    const flow = await startAndAuthorize();
    github.outage = true;
    let res;
    try {
      res = await callback(flow.callbackPath, flow.stateCookie);
    } finally {
      github.outage = false;
    }
    assert.equal(res.status, 502, res.text);
    assert.match(res.body.error, /GitHub answered the code exchange with HTTP 503/);

    const afterExchange = await startAndAuthorize();
    github.apiOutage = true;
    try {
      res = await callback(afterExchange.callbackPath, afterExchange.stateCookie);
    } finally {
      github.apiOutage = false;
    }
    assert.equal(res.status, 502, res.text);
    assert.match(res.body.error, /GitHub answered GET \/user with HTTP 503/);

    const flow2 = await startAndAuthorize();
    await configure({ token_url: `http://127.0.0.1:${await freePort()}/login/oauth/access_token` });
    const unreachable = await callback(flow2.callbackPath, flow2.stateCookie);
    assert.equal(unreachable.status, 502, unreachable.text);
    assert.match(unreachable.body.error, /GitHub is unreachable/);
    assert.deepEqual(await counts(), before);
    await configure({});
  });

  it('with allowed_organizations, a member signs in and anyone else gets a 403 with nothing created', async () => {
    await configure({ allowed_organizations: ['ringmaster-ci'] });
    try {
      const asked = new URL((await stack.request('GET', '/api/v1/auth/github')).headers.get('location')!);
      assert.equal(asked.searchParams.get('scope'), 'read:user user:email read:org');
      github.user = { ...octocat(), id: 9001, login: 'outsider', orgs: ['elsewhere'] };
      const before = await counts();
      const outsider = await startAndAuthorize();
      const refused = await callback(outsider.callbackPath, outsider.stateCookie);
      assert.equal(refused.status, 403, refused.text);
      assert.deepEqual(await counts(), before);
      github.user = { ...octocat(), id: 9002, login: 'member', orgs: ['Ringmaster-CI'] };
      const member = await startAndAuthorize();
      assert.equal((await callback(member.callbackPath, member.stateCookie)).status, 302);
    } finally {
      github.user = octocat();
      await configure({});
    }
  });

  it('a new GitHub user whose login is a local username gets github-<login>; the local account is untouched', async () => {
    const local = await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: { username: 'hubot', email: 'hubot@example.org', password: 'local hubot password' } });
    assert.equal(local.status, 200);
    github.user = { ...octocat(), id: 777, login: 'hubot', emails: [{ email: 'hubot@example.org', primary: true, verified: true }] };
    try {
      const flow = await startAndAuthorize();
      const res = await callback(flow.callbackPath, flow.stateCookie);
      assert.equal(res.status, 302, res.text);
      const created = await stack.db('users').where({ username: 'github-hubot' }).first();
      assert.equal(created.user_type, 'github');
      assert.equal(created.email, null, 'an email another account has is not copied');
      assert.equal((await stack.db('users').where({ id: local.body.id }).first()).user_type, 'local');
    } finally {
      github.user = octocat();
    }
  });

  it('when every username candidate is taken, a first sign-in is a 409 that creates nothing', async () => {
    for (const username of ['monalisa', 'github-monalisa', 'github-4242']) {
      const made = await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: { username, email: `${username}@example.org`, password: 'local password' } });
      assert.equal(made.status, 200);
    }
    github.user = { ...octocat(), id: 4242, login: 'monalisa' };
    try {
      const before = await counts();
      const flow = await startAndAuthorize();
      const res = await callback(flow.callbackPath, flow.stateCookie);
      assert.equal(res.status, 409, res.text);
      assert.equal(cookieFrom(res, SESSION_COOKIE), undefined);
      assert.deepEqual(await counts(), before);
    } finally {
      github.user = octocat();
    }
  });

  it('a disabled user is refused with 403 and gets no session', async () => {
    await stack.db('users').where({ username: 'octocat' }).update({ enabled: false });
    const before = await counts();
    const flow = await startAndAuthorize();
    const res = await callback(flow.callbackPath, flow.stateCookie);
    assert.equal(res.status, 403);
    assert.deepEqual(await counts(), before);
    await stack.db('users').where({ username: 'octocat' }).update({ enabled: true });
  });

  it('the client secret reads as [redacted] from the config, and a redirect off this server is refused as config', async () => {
    const shown = await stack.request('GET', '/api/v1/admin/config', { key: stack.adminKey });
    assert.equal(JSON.parse(shown.body.contents).github_oauth.client_secret, '[redacted]');
    assert.ok(!shown.text.includes(github.clientSecret));
    const offsite = { github_oauth: { client_id: 'x', client_secret: 'y', after_login_path: '//evil.example.org/' } };
    const res = await stack.request('PUT', '/api/v1/admin/config', { key: stack.adminKey, body: { contents: JSON.stringify(offsite) } });
    assert.equal(res.status, 400);
    assert.equal(res.body.details[0].field, 'contents.github_oauth.after_login_path');
  });
});
