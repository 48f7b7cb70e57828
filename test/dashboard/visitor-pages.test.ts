import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { seedJobset, seedProject, type Row } from '../support/seed';
import { signIn, type BrowserSession } from '../support/session';
import { heldReads } from '../support/held-reads';

/**
 * Visitors' identical page requests share one answer while it is being made (api/dashboard/router.ts), through the
 * real app on the real database. The test holds a page's answer back by locking a table the page reads (jobsets,
 * for the project page): each answer being made is then one statement waiting on that lock, which the test counts.
 */
describe('dashboard pages: visitors asking for the same page at once share its answer', () => {
  let stack: TestStack;
  let project: Row;
  let session: BrowserSession;

  const page = async (path: string, cookie?: string) => {
    const res = await fetch(`${stack.url}${path}`, { headers: cookie ? { cookie } : {}, redirect: 'manual' });
    return { status: res.status, html: await res.text(), setCookie: res.headers.getSetCookie() };
  };
  let held: ReturnType<typeof heldReads>;
  /** Holds every read of jobsets back until release(). */
  const holdJobsets = () => held.hold('jobsets');
  const release = () => held?.release();
  const waitingStatements = () => held.waitingStatements();
  const untilWaiting = (n: number) => held.untilWaiting(n);
  const setDescription = (description: string) => stack.db('projects').where({ id: project.id }).update({ description });

  before(async () => {
    stack = await startTestStack({ worker: false });
    held = heldReads(stack.db);
    const made = await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: { username: 'ada', email: 'ada@example.org', password: 'ada secret', role: 'admin' } });
    assert.equal(made.status, 200, made.text);
    session = await signIn(stack, 'ada', 'ada secret');
    project = await seedProject(stack.db, { name: 'shared', description: 'first words' });
    await seedJobset(stack.db, project.id, { name: 'main' });
  });
  after(async () => {
    await release();
    await stack?.stop();
  });

  it('visitors arriving while a visitor’s page is being made get that page; a signed-in viewer gets a page of their own', async () => {
    await holdJobsets();
    try {
      const first = page(`/projects/${project.id}`);
      await untilWaiting(1); // its project row read, its jobsets read held
      // Another process (not this API) changes the project meanwhile: a visitor that made a page of its own would see it.
      await setDescription('second words');
      const joined = [page(`/projects/${project.id}`), page(`/projects/${project.id}`)];
      const signedIn = page(`/projects/${project.id}`, session.cookie);
      await untilWaiting(2); // the signed-in viewer's page: its own statement
      assert.equal(await waitingStatements(), 2, 'the visitors made no page of their own');
      await release();
      const visitors = await Promise.all([first, ...joined]);
      for (const v of visitors) {
        assert.equal(v.status, 200);
        assert.equal(v.html, visitors[0].html, 'the same answer');
        assert.match(v.html, /first words/, 'made before the change');
        assert.match(v.html, /<a href="\/login">Sign in<\/a>/);
        assert.doesNotMatch(v.html, /csrf/);
        assert.deepEqual(v.setCookie, []);
      }
      const own = await signedIn;
      assert.match(own.html, /second words/);
      assert.match(own.html, /<meta name="csrf-token" content="[^"]+"/);
      assert.match(own.html, /ada <span class="role">\(admin\)<\/span>/);
    } finally {
      await release();
    }
  });

  it('a visitor’s page never comes from a signed-in viewer’s answer', async () => {
    await holdJobsets();
    try {
      const signedIn = page(`/projects/${project.id}`, session.cookie);
      await untilWaiting(1);
      const visitor = page(`/projects/${project.id}`);
      await untilWaiting(2);
      await release();
      assert.match((await signedIn).html, /<meta name="csrf-token"/);
      const html = (await visitor).html;
      assert.match(html, /<a href="\/login">Sign in<\/a>/);
      assert.doesNotMatch(html, /csrf|Sign out/);
    } finally {
      await release();
    }
  });

  it('read-your-writes: a visitor arriving after this process completed a write gets a page made after it', async () => {
    await setDescription('before the write');
    await holdJobsets();
    try {
      const before = page(`/projects/${project.id}`);
      await untilWaiting(1);
      // A write through this API completes (its answer received) while that page is still being made.
      const written = await stack.request('PUT', `/api/v1/projects/${project.id}`, { key: stack.adminKey, body: { description: 'after the write' } });
      assert.equal(written.status, 200, written.text);
      const after = page(`/projects/${project.id}`);
      await untilWaiting(2);
      await release();
      assert.match((await before).html, /before the write/);
      assert.match((await after).html, /after the write/, 'not the page begun before the write');
    } finally {
      await release();
    }
  });

  it('a different URL is a different page: no sharing across query strings', async () => {
    await holdJobsets();
    try {
      const first = page(`/projects/${project.id}`);
      await untilWaiting(1);
      const other = page(`/projects/${project.id}?page=2`);
      await untilWaiting(2);
      await release();
      assert.equal((await first).status, 200);
      assert.equal((await other).status, 200);
    } finally {
      await release();
    }
  });
});
