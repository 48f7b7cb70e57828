import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { seedBuild, seedEvaluation, seedJobset, seedProject, type Row } from '../support/seed';
import { SESSION_COOKIE } from '../../api/queries/sessions';

interface Page {
  status: number;
  html: string;
  headers: Headers;
}

/**
 * The dashboard over plain HTTP, without a browser: every page answers HTML from the read model,
 * escapes what it shows, gates its buttons by role, and answers a 404 page for what does not exist.
 */
describe('dashboard pages over HTTP', () => {
  let stack: TestStack;
  let project: Row;
  let jobset: Row;
  let older: Row;
  let newer: Row;
  let failing: Row;
  let queued: Row;
  let adminCookie: string;
  let readerCookie: string;

  const get = async (path: string, cookie?: string): Promise<Page> => {
    const res = await fetch(`${stack.url}${path}`, { headers: cookie ? { cookie } : {}, redirect: 'manual' });
    return { status: res.status, html: await res.text(), headers: res.headers };
  };
  const signInByForm = async (username: string, password: string) => {
    const res = await fetch(`${stack.url}/login?next=/`, {
      method: 'POST',
      body: new URLSearchParams({ username, password }),
      redirect: 'manual',
    });
    return res;
  };
  const cookieOf = (res: Response) => res.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`))?.split(';')[0];

  before(async () => {
    stack = await startTestStack({ worker: false });
    for (const [username, role] of [['ada', 'admin'], ['rita', 'read-only']] as const) {
      const made = await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: { username, email: `${username}@example.org`, password: `${username} secret`, role } });
      assert.equal(made.status, 200, made.text);
    }
    project = await seedProject(stack.db, { name: 'demo', description: '<script>alert("x")</script> a project' });
    jobset = await seedJobset(stack.db, project.id, { name: 'main' });
    older = await seedEvaluation(stack.db, jobset.id, { created_at: new Date(Date.now() - 60_000) });
    newer = await seedEvaluation(stack.db, jobset.id, { nr_errors: 1 });
    await stack.db('evaluation_errors').insert({ evaluation_id: newer.id, job_name: 'broken', error_message: 'error: attribute "x" missing\n  at release.nix:3:5' });
    await seedBuild(stack.db, { evaluation: older, job_name: 'hello', status: 'succeeded' });
    failing = await seedBuild(stack.db, { evaluation: newer, job_name: 'hello', status: 'failed', error_message: 'builder failed with exit code 1' });
    await seedBuild(stack.db, { evaluation: older, job_name: 'gone', status: 'succeeded' });
    queued = await seedBuild(stack.db, { evaluation: newer, job_name: 'fresh', status: 'pending', system: 'riscv64-linux' });
    const admin = await signInByForm('ada', 'ada secret');
    assert.equal(admin.status, 302);
    adminCookie = cookieOf(admin)!;
    readerCookie = cookieOf(await signInByForm('rita', 'rita secret'))!;
  });
  after(async () => stack?.stop());

  it('signing in with the form sets the session cookie and redirects; a wrong password re-renders the form with 401', async () => {
    assert.ok(adminCookie);
    const wrong = await signInByForm('ada', 'nope');
    assert.equal(wrong.status, 401);
    const html = await wrong.text();
    assert.match(html, /Invalid username or password/);
    assert.equal(cookieOf(wrong), undefined);
    const audit = await stack.db('audit_log').where({ action: 'POST /login', actor_name: 'ada' }).first();
    assert.ok(audit, 'the sign-in is audited');
  });

  it('the sign-in form only redirects to paths of this site', async () => {
    const res = await fetch(`${stack.url}/login?next=${encodeURIComponent('//evil.example/x')}`, { method: 'POST', body: new URLSearchParams({ username: 'ada', password: 'ada secret' }), redirect: 'manual' });
    assert.equal(res.headers.get('location'), '/');
  });

  it('the home page shows the queue by system, failing jobs and recent evaluations', async () => {
    const page = await get('/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(page.html, /^<!doctype html>/);
    assert.match(page.html, /riscv64-linux/);
    assert.match(page.html, new RegExp(`/builds/${failing.id}`));
    assert.match(page.html, new RegExp(`/evaluations/${newer.id}`));
  });

  it('text from the database is escaped, never markup', async () => {
    const page = await get(`/projects/${project.id}`);
    assert.equal(page.status, 200);
    assert.ok(!page.html.includes('<script>alert'), 'the description is not markup');
    assert.match(page.html, /&lt;script>alert/);
  });

  it('the jobset page shows the job × evaluation matrix', async () => {
    const page = await get(`/jobsets/${jobset.id}`);
    assert.equal(page.status, 200);
    assert.match(page.html, /<table class="matrix"/);
    for (const job of ['hello', 'gone', 'fresh']) assert.match(page.html, new RegExp(`<th scope="row">${job}</th>`));
    assert.match(page.html, new RegExp(`/builds/${failing.id}`));
  });

  it('the evaluation page shows its errors in full and what changed against the previous one', async () => {
    const page = await get(`/evaluations/${newer.id}`);
    assert.equal(page.status, 200);
    assert.match(page.html, /attribute &quot;x&quot; missing\n  at release.nix:3:5/);
    const section = (title: string) => page.html.slice(page.html.indexOf(`<h3>${title}`), page.html.indexOf('</ul>', page.html.indexOf(`<h3>${title}`)));
    assert.match(section('Newly failing (1)'), />hello</);
    assert.match(section('New jobs (1)'), />fresh</);
    assert.match(section('Removed jobs (1)'), />gone</);
  });

  it('a queued build says why it waits: no builder builds its system', async () => {
    const page = await get(`/builds/${queued.id}`);
    assert.equal(page.status, 200);
    assert.match(page.html, /data-wait-reason="no_builder"/);
    assert.match(page.html, /No builder builds riscv64-linux/);
  });

  it('a build links to its workflow in the Temporal UI, and the workflow ID leads back to the build', async () => {
    const page = await get(`/builds/${failing.id}`);
    assert.match(page.html, new RegExp(`href="${stack.config.temporalUiUrl}/namespaces/default/workflows/build-${failing.id}"`));
    const back = await get(`/workflows/build-${failing.id}`);
    assert.equal(back.status, 302);
    assert.equal(back.headers.get('location'), `/builds/${failing.id}`);
  });

  it('an admin sees the actions a failed build allows; a read-only user and a visitor see none', async () => {
    const asAdmin = await get(`/builds/${failing.id}`, adminCookie);
    assert.match(asAdmin.html, /data-action="restart"/);
    assert.match(asAdmin.html, /data-action="cancel"/, 'cancel is there for when the build runs again, hidden');
    assert.match(asAdmin.html, /<meta name="csrf-token"/);
    for (const cookie of [readerCookie, undefined]) {
      const page = await get(`/builds/${failing.id}`, cookie);
      assert.equal(page.status, 200);
      assert.doesNotMatch(page.html, /data-action=/);
      assert.doesNotMatch(page.html, /<button[^>]*>(Cancel|Restart|Bump|Keep)/);
    }
  });

  it('the admin page is for admins: a visitor is sent to sign in, a read-only user is refused', async () => {
    assert.equal((await get('/admin', adminCookie)).status, 200);
    const visitor = await get('/admin');
    assert.equal(visitor.status, 302);
    assert.match(visitor.headers.get('location') ?? '', /^\/login/);
    assert.equal((await get('/admin', readerCookie)).status, 403);
  });

  it('an unknown or malformed ID is an HTML 404 page, never a server error', async () => {
    for (const path of ['/builds/not-a-uuid', '/builds/00000000-0000-0000-0000-000000000000', '/evaluations/x', '/jobsets/00000000-0000-0000-0000-000000000000', '/projects/%E0%A4%A']) {
      const page = await get(path);
      assert.equal(page.status, 404, path);
      assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    }
  });

  it('every list page answers, and the API keeps its own routes and JSON 404s', async () => {
    for (const path of ['/projects', '/queue', '/queue?system=riscv64-linux&page=2', '/builders', '/login']) assert.equal((await get(path)).status, 200, path);
    const api = await get('/api/v1/nothing-here');
    assert.equal(api.status, 404);
    assert.match(api.headers.get('content-type') ?? '', /json/);
  });

  it('serves its one script and stylesheet with an ETag, and nothing else from /static', async () => {
    const css = await get('/static/dashboard.css');
    assert.equal(css.status, 200);
    assert.match(css.html, /prefers-color-scheme: dark/);
    const again = await fetch(`${stack.url}/static/dashboard.css`, { headers: { 'if-none-match': css.headers.get('etag')! } });
    assert.equal(again.status, 304);
    assert.equal((await get('/static/dashboard.js')).status, 200);
    assert.equal((await get('/static/..%2Fpackage.json')).status, 404);
  });

  it('signing out needs the form of this session', async () => {
    const bad = await fetch(`${stack.url}/logout`, { method: 'POST', headers: { cookie: readerCookie }, body: new URLSearchParams({ csrf_token: 'forged' }), redirect: 'manual' });
    assert.equal(bad.status, 403);
    const row = await stack.request('GET', '/api/v1/me', { headers: { cookie: readerCookie } });
    assert.equal(row.status, 200, 'still signed in');
  });
});
