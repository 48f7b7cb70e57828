import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { seedBuild, seedEvaluation, seedJobset, seedProject, type Row } from '../support/seed';
import { SESSION_COOKIE } from '../../api/queries/sessions';
import { eventually } from '../support/pipeline';

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

  it('signed in, the pages whose first read runs beside the session lookup show the same data and the signed-in header', async () => {
    for (const [path, shows] of [
      ['/', `/builds/${failing.id}`],
      [`/jobsets/${jobset.id}`, `/builds/${failing.id}`],
      [`/evaluations/${newer.id}`, 'attribute &quot;x&quot; missing'],
      [`/builds/${queued.id}`, 'riscv64-linux'],
    ]) {
      const anonymous = await get(path);
      const signedIn = await get(path, adminCookie);
      assert.equal(signedIn.status, 200, path);
      assert.ok(signedIn.html.includes(shows), path);
      assert.ok(anonymous.html.includes(shows), path);
      assert.match(signedIn.html, /Sign out/, path);
      assert.doesNotMatch(anonymous.html, /Sign out/, path);
    }
    assert.equal((await get('/jobsets/00000000-0000-0000-0000-000000000000', adminCookie)).status, 404);
    assert.equal((await get('/builds/not-a-uuid', adminCookie)).status, 404);
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
    // A finished build's cell is one link styled as its status, its ID once; a queued one keeps its badge for the live status.
    assert.match(page.html, new RegExp(`<td><a href="/builds/${failing.id}" class="status bad">failed</a></td>`));
    assert.equal(page.html.split(failing.id).length - 1, 1);
    assert.match(page.html, new RegExp(`<a href="/builds/${queued.id}"><span class="status active" data-build-status="${queued.id}" data-status="pending">pending</span></a>`));
    assert.match(page.html, /<td class="muted"><span aria-hidden="true">·<\/span><span class="sr-only">not in this evaluation<\/span><\/td>/);
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
      // Starring is every signed-in user's own (POST /api/v1/me/starred-jobs is for any user): the only button left.
      assert.doesNotMatch(page.html, /data-action="(?!star")/);
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
    for (const path of ['/projects', '/queue', '/queue?system=riscv64-linux&page=2', '/builders', '/login', '/channels', '/channels?page=3', '/metrics', '/metrics?bucket=6h', '/metrics?bucket=nonsense', '/search', '/search?q=%00x&from=yesterday&page=-1']) {
      assert.equal((await get(path)).status, 200, path);
    }
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

  describe('channels, search, starred jobs, metrics, webhooks and notification tasks', () => {
    let channel: Row;
    let task: Row;
    const WEBHOOK_SECRET = 'never-shown-secret-1234';

    before(async () => {
      [channel] = await stack.db('channels').insert({ project_id: project.id, name: 'demo-stable<b>', jobset_id: jobset.id, current_evaluation_id: older.id }).returning('*');
      const hook = await stack.request('POST', `/api/v1/projects/${project.id}/webhooks`, { key: stack.adminKey, body: { forge_type: 'gitea', secret: WEBHOOK_SECRET } });
      assert.equal(hook.status, 200, hook.text);
      const ada = await stack.db('users').where({ username: 'ada' }).first();
      await stack.db('starred_jobs').insert({ user_id: ada.id, project_id: project.id, jobset_id: jobset.id, job_name: 'hello' });
      [task] = await stack
        .db('notification_tasks')
        .insert({ notification_type: 'webhook', payload: JSON.stringify({ token: 'x' }), status: 'failed', attempts: 5, max_attempts: 5, last_error: 'HTTP 503 from the hook', target_name: 'ops-hook', event: 'build_finished', order_key: 'ops-hook:demo', state: 'failure' })
        .returning('*');
      await stack.db('notification_tasks').insert({ notification_type: 'webhook', payload: '{}', status: 'completed', attempts: 1, target_name: 'ops-hook', event: 'build_started', order_key: 'ops-hook:demo', state: 'pending' });
    });

    it('the channels page lists channels (escaped) and a channel shows what it serves; only an admin gets its delete button', async () => {
      const list = await get('/channels');
      assert.match(list.html, new RegExp(`href="/channels/${channel.id}">demo-stable&lt;b></a>`));
      assert.match(list.html, new RegExp(`href="/evaluations/${older.id}"`));
      const one = await get(`/channels/${channel.id}`, adminCookie);
      assert.equal(one.status, 200);
      assert.match(one.html, /nix-channel --add/);
      assert.match(one.html, /data-action="delete-channel"/);
      assert.doesNotMatch((await get(`/channels/${channel.id}`, readerCookie)).html, /data-action=/);
      assert.equal((await get('/channels/00000000-0000-0000-0000-000000000000')).status, 404);
    });

    it('an admin creates a channel and promotes an evaluation with the forms, without script; others cannot', async () => {
      const side = await seedJobset(stack.db, project.id, { name: 'side' });
      const first = await seedEvaluation(stack.db, side.id, { created_at: new Date(Date.now() - 30_000) });
      await seedBuild(stack.db, { evaluation: first, job_name: 'hello', status: 'succeeded' });
      const csrfOf = (html: string) => /<meta name="csrf-token" content="([^"]+)"/.exec(html)![1];
      const post = (path: string, cookie: string | undefined, fields: Record<string, string>) =>
        fetch(`${stack.url}${path}`, { method: 'POST', headers: cookie ? { cookie } : {}, body: new URLSearchParams(fields), redirect: 'manual' });

      const list = await get('/channels', adminCookie);
      assert.match(list.html, /<form method="post" action="\/channels"/);
      const adminCsrf = csrfOf(list.html);
      assert.match(list.html, new RegExp(`<input type="hidden" name="csrf_token" value="${adminCsrf}"/>`));
      assert.doesNotMatch((await get('/channels')).html, /action="\/channels"/, 'not shown to someone signed out');

      const fields = { name: 'side-stable', project: 'demo', jobset: 'side', aggregate_job: '' };
      const countOf = async () => Number((await stack.db('channels').where({ name: 'side-stable' }).count('* as n'))[0].n);
      assert.equal((await post('/channels', adminCookie, fields)).status, 403, 'no CSRF token');
      assert.equal((await post('/channels', adminCookie, { ...fields, csrf_token: 'forged' })).status, 403, 'a wrong CSRF token');
      assert.equal((await post('/channels', readerCookie, { ...fields, csrf_token: csrfOf((await get('/channels', readerCookie)).html) })).status, 403, 'a read-only user');
      assert.equal((await post('/channels', undefined, fields)).status, 401);
      assert.equal(await countOf(), 0, 'no refused form created the channel');

      const badName = await post('/channels', adminCookie, { ...fields, csrf_token: adminCsrf, name: '-<b>x' });
      assert.equal(badName.status, 400);
      assert.match(await badName.text(), /name: a channel's name is 1 to 100/);
      const noProject = await post('/channels', adminCookie, { ...fields, csrf_token: adminCsrf, project: 'nope<i>' });
      assert.equal(noProject.status, 404);
      assert.match(await noProject.text(), /project nope&lt;i> not found/);

      const created = await post('/channels', adminCookie, { ...fields, csrf_token: adminCsrf });
      assert.equal(created.status, 303);
      const channelRow = await stack.db('channels').where({ name: 'side-stable' }).first();
      assert.equal(created.headers.get('location'), `/channels/${channelRow.id}`);
      assert.equal(channelRow.jobset_id, side.id);
      assert.equal(channelRow.current_evaluation_id, first.id, 'it starts at the newest good evaluation, as the API does');
      assert.ok(await stack.db('audit_log').where({ action: 'POST /api/v1/channels', target_id: channelRow.id, actor_name: 'ada' }).first(), 'the creation is audited');
      assert.equal((await post('/channels', adminCookie, { ...fields, csrf_token: adminCsrf })).status, 409, 'the name is taken');

      const second = await seedEvaluation(stack.db, side.id);
      await seedBuild(stack.db, { evaluation: second, job_name: 'hello', status: 'succeeded' });
      const page = await get(`/channels/${channelRow.id}`, adminCookie);
      assert.match(page.html, new RegExp(`<form method="post" action="/channels/${channelRow.id}/promote"`));
      assert.match(page.html, new RegExp(`<option value="${second.id}"`));
      assert.doesNotMatch((await get(`/channels/${channelRow.id}`, readerCookie)).html, /\/promote"/);
      const promotePath = `/channels/${channelRow.id}/promote`;
      assert.equal((await post(promotePath, readerCookie, { evaluation_id: second.id, csrf_token: csrfOf((await get('/channels', readerCookie)).html) })).status, 403);
      assert.equal((await post(promotePath, adminCookie, { evaluation_id: 'not-an-id', csrf_token: adminCsrf })).status, 400);
      const promoted = await post(promotePath, adminCookie, { evaluation_id: second.id, csrf_token: adminCsrf });
      assert.equal(promoted.status, 303);
      assert.equal((await stack.db('channels').where({ id: channelRow.id }).first()).current_evaluation_id, second.id);
      assert.ok(await stack.db('audit_log').where({ action: 'channel.promote', target_id: channelRow.id, actor_name: 'ada' }).first(), 'the promotion is audited');
      const back = await post(promotePath, adminCookie, { evaluation_id: first.id, csrf_token: adminCsrf });
      assert.equal(back.status, 409, 'a channel never goes back in time');
      assert.equal((await stack.db('channels').where({ id: channelRow.id }).first()).current_evaluation_id, second.id);
    });

    it('the header has a search box; the search page answers names and builds by the API filters', async () => {
      const home = await get('/');
      assert.match(home.html, /<form class="quick-search" role="search" method="get" action="\/search">/);
      const byName = await get('/search?q=hell');
      assert.match(byName.html, /Names containing “hell”/);
      assert.match(byName.html, /job <a href="\/search\?q=hello&amp;project=demo&amp;jobset=main">hello<\/a>/);
      assert.match(byName.html, new RegExp(`/builds/${failing.id}`));
      assert.match(byName.html, /value="hell"/, 'the box keeps the query');
      const failed = await get('/search?status=failed&project=demo');
      assert.match(failed.html, new RegExp(`/builds/${failing.id}`));
      assert.doesNotMatch(failed.html, new RegExp(`/builds/${queued.id}`));
      assert.match(failed.html, /Builds \(1\)/);
      const short = await get('/search?q=he');
      assert.match(short.html, /between 3 and 200 characters/);
      const escaped = await get(`/search?q=${encodeURIComponent('<img src=x>')}`);
      assert.ok(!escaped.html.includes('<img src=x>'));
      const window = await get(`/search?system=riscv64-linux&from=2000-01-01&to=2999-01-01`);
      assert.match(window.html, new RegExp(`/builds/${queued.id}`));
    });

    it("the starred page lists the signed-in user's starred jobs with their newest build; the build page offers star or unstar", async () => {
      const starred = await get('/starred', adminCookie);
      assert.equal(starred.status, 200);
      assert.match(starred.html, new RegExp(`<a href="/builds/${failing.id}">hello</a>`), 'the newest build of the job');
      assert.match(starred.html, /data-action="unstar"/);
      assert.equal((await get('/starred')).status, 302, 'a visitor is sent to sign in');
      assert.match((await get('/starred', readerCookie)).html, /No starred job yet/);
      assert.match((await get(`/builds/${failing.id}`, adminCookie)).html, /data-action="unstar"/);
      assert.match((await get(`/builds/${queued.id}`, adminCookie)).html, /data-action="star"/);
      assert.doesNotMatch((await get(`/builds/${queued.id}`)).html, /data-action="star"/, 'a visitor cannot star');
    });

    it('the metrics page shows the systems table and the series as an SVG and a table', async () => {
      // The series are read from the hourly rollup on every request; the page waits for them.
      const page = await eventually('the series to be computed', async () => {
        const answer = await get('/metrics');
        return answer.html.includes('<svg') ? answer : undefined;
      }, 10_000);
      assert.match(page.html, /<th scope="row"><a href="\/queue\?system=riscv64-linux">riscv64-linux<\/a><\/th>/);
      assert.match(page.html, /<svg class="chart"[^>]*role="img"/);
      const today = new Date().toISOString().slice(0, 10);
      // Current, not the series cached by the first /metrics request above: the four builds of before() and the two seeded since.
      assert.match(page.html, new RegExp(`<th scope="row">${today}</th><td class="num">6</td><td class="num">1</td>`), 'six builds today, one failed');
    });

    it("a project's webhooks page shows its webhooks and their URLs, never a secret; buttons by role", async () => {
      const asAdmin = await get(`/projects/${project.id}/webhooks`, adminCookie);
      assert.equal(asAdmin.status, 200);
      assert.match(asAdmin.html, new RegExp(`/api/v1/webhooks/${project.id}/gitea`));
      assert.match(asAdmin.html, /data-action="delete-webhook"/);
      assert.match(asAdmin.html, /aria-label="Register a webhook"/);
      const sealed = await stack.db('project_webhooks').where({ project_id: project.id }).first();
      for (const cookie of [adminCookie, readerCookie, undefined]) {
        const page = await get(`/projects/${project.id}/webhooks`, cookie);
        assert.ok(!page.html.includes(WEBHOOK_SECRET) && !page.html.includes(sealed.secret), 'no secret, sealed or not');
      }
      const asReader = await get(`/projects/${project.id}/webhooks`, readerCookie);
      assert.doesNotMatch(asReader.html, /data-action=|api-form/);
      assert.match((await get(`/projects/${project.id}`)).html, new RegExp(`href="/projects/${project.id}/webhooks"`));
    });

    it('the notification tasks page is for admins, paged by status, with a retry button on failed tasks only', async () => {
      const all = await get('/admin/notification-tasks', adminCookie);
      assert.equal(all.status, 200);
      assert.match(all.html, new RegExp(`data-api-path="/api/v1/admin/notification-tasks/${task.id}/retry"`));
      assert.equal(all.html.match(/data-action="retry-notification"/g)?.length, 1, 'the completed task has no retry');
      assert.match(all.html, /HTTP 503 from the hook/);
      const completed = await get('/admin/notification-tasks?status=completed', adminCookie);
      assert.doesNotMatch(completed.html, /retry-notification/);
      assert.equal((await get('/admin/notification-tasks', readerCookie)).status, 403);
      assert.equal((await get('/admin/notification-tasks')).status, 302);
      assert.match((await get('/admin', adminCookie)).html, /href="\/admin\/notification-tasks"/);
    });

    it('a read-only user sees none of the new pages\' action buttons', async () => {
      for (const path of ['/channels', `/channels/${channel.id}`, '/search?q=hello', '/starred', '/metrics', `/projects/${project.id}/webhooks`]) {
        const page = await get(path, readerCookie);
        assert.equal(page.status, 200, path);
        assert.doesNotMatch(page.html, /api-form/, path);
        assert.deepEqual([...page.html.matchAll(/<button[^>]*>([^<]*)</g)].map((m) => m[1].trim()), ['Search', 'Sign out'].concat(path.startsWith('/search') ? ['Search builds'] : []), path);
      }
    });
  });

  it('the admin page pages its users in SQL: 50 a page, then the next page', async () => {
    await stack.db('users').insert(Array.from({ length: 55 }, (_, i) => ({ username: `zz-user-${String(i).padStart(2, '0')}`, email: `zz${i}@example.org`, role: 'read-only' })));
    const first = await get('/admin', adminCookie);
    const names = (html: string) => [...html.slice(html.indexOf('id="users"'), html.indexOf('id="keys"')).matchAll(/<tr><td>([^<]+)<\/td>/g)].map((m) => m[1]);
    const firstNames = names(first.html);
    assert.equal(firstNames.length, 50);
    assert.match(first.html, /href="\/admin\?users=2" rel="next"/);
    const second = names((await get('/admin?users=2', adminCookie)).html);
    assert.deepEqual([...firstNames, ...second].sort(), ['ada', 'rita', ...Array.from({ length: 55 }, (_, i) => `zz-user-${String(i).padStart(2, '0')}`)].sort());
  });

  it('the admin page pages the API keys in SQL: 50 a page, oldest first, then the next page', async () => {
    const before = Number((await stack.db('api_keys').whereNull('revoked_at').count('* as n'))[0].n);
    for (let i = 0; i < 55 - before + 1; i++) {
      const made = await stack.request('POST', '/api/v1/api-keys', { key: stack.adminKey, body: { name: `zz-key-${String(i).padStart(2, '0')}`, role: 'read-only' } });
      assert.equal(made.status, 200, made.text);
    }
    const live = (await stack.db('api_keys').whereNull('revoked_at').orderBy([{ column: 'created_at' }, { column: 'id' }]).select('name')).map((k) => k.name);
    const names = (html: string) => [...html.slice(html.indexOf('id="keys"'), html.indexOf('id="audit"')).matchAll(/<li><strong>([^<]+)<\/strong>/g)].map((m) => m[1]);
    const first = await get('/admin', adminCookie);
    assert.deepEqual(names(first.html), live.slice(0, 50));
    assert.match(first.html, /href="\/admin\?keys=2" rel="next"/);
    assert.deepEqual(names((await get('/admin?keys=2', adminCookie)).html), live.slice(50, 100));
  });

  it('GitHub and LDAP sign-in appear on the sign-in page only when the config file enables them', async () => {
    const offered = async () => {
      const html = (await get('/login')).html;
      return { github: html.includes('href="/api/v1/auth/github"'), ldap: html.includes('data-api-path="/auth/ldap"') };
    };
    assert.deepEqual(await offered(), { github: false, ldap: false });
    const configure = async (contents: object) => {
      const res = await stack.request('PUT', '/api/v1/admin/config', { key: stack.adminKey, body: { contents: JSON.stringify(contents) } });
      assert.equal(res.status, 200, res.text);
    };
    const github = { client_id: 'id', client_secret: 'secret' };
    const ldap = { url: 'ldap://127.0.0.1:1', base_dn: 'dc=example,dc=org' };
    try {
      await configure({ github_oauth: github });
      assert.deepEqual(await offered(), { github: true, ldap: false });
      await configure({ ldap });
      assert.deepEqual(await offered(), { github: false, ldap: true });
      await configure({ github_oauth: { ...github, enabled: false }, ldap });
      assert.deepEqual(await offered(), { github: false, ldap: true });
      const refused = await fetch(`${stack.url}/login`, { method: 'POST', body: new URLSearchParams({ username: 'ada', password: 'wrong' }) });
      assert.match(await refused.text(), /data-api-path="\/auth\/ldap"/, 'the form shown again after a refusal offers them too');
    } finally {
      await configure({});
    }
    assert.deepEqual(await offered(), { github: false, ldap: false });
  });

  it("the sign-in form shares the API's refusal limits: past them it answers 429 and checks no password", async () => {
    const attempt = (password: string) => fetch(`${stack.url}/login`, { method: 'POST', body: new URLSearchParams({ username: 'limited-user', password }), redirect: 'manual' });
    for (let i = 0; i < 10; i++) assert.equal((await attempt('wrong')).status, 401);
    const limited = await attempt('wrong');
    assert.equal(limited.status, 429);
    assert.match(await limited.text(), /Too many refused sign-ins/);
  });

  it('with reads requiring sign-in, a page that prefetches redirects a visitor to sign in and still answers a signed-in user', async () => {
    const configure = async (contents: object) => {
      const res = await stack.request('PUT', '/api/v1/admin/config', { key: stack.adminKey, body: { contents: JSON.stringify(contents) } });
      assert.equal(res.status, 200, res.text);
    };
    await configure({ require_auth_for_reads: true });
    try {
      for (const path of ['/', `/builds/${failing.id}`, `/jobsets/${jobset.id}`, `/evaluations/${newer.id}`]) {
        const visitor = await get(path);
        assert.equal(visitor.status, 302, path);
        assert.equal(visitor.headers.get('location'), `/login?next=${encodeURIComponent(path)}`);
        const signedIn = await get(path, adminCookie);
        assert.equal(signedIn.status, 200, path);
      }
      assert.match((await get(`/builds/${failing.id}`, adminCookie)).html, /builder failed with exit code 1/);
    } finally {
      await configure({});
    }
  });

  it('signing out needs the form of this session', async () => {
    const bad = await fetch(`${stack.url}/logout`, { method: 'POST', headers: { cookie: readerCookie }, body: new URLSearchParams({ csrf_token: 'forged' }), redirect: 'manual' });
    assert.equal(bad.status, 403);
    const row = await stack.request('GET', '/api/v1/me', { headers: { cookie: readerCookie } });
    assert.equal(row.status, 200, 'still signed in');
  });
});
