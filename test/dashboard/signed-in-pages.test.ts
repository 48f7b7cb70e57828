import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { seedBuild, seedEvaluation, seedJobset, seedProject, type Row } from '../support/seed';
import { sessionHeaders, signIn, type BrowserSession } from '../support/session';
import { heldReads } from '../support/held-reads';

/**
 * Signed-in viewers of one role asking for the same build page at once share its render (PageDef.sharedByRole,
 * api/dashboard/router.ts), with their own name, CSRF token and star filled in. As in visitor-pages.test.ts, the test
 * holds renders back by locking a table the page reads (build_products): each render being made is one statement
 * waiting on that lock.
 */
describe('dashboard: signed-in viewers of one role share a build page, each with their own parts', () => {
  let stack: TestStack;
  let build: Row;
  let ann: BrowserSession;
  let bob: BrowserSession;
  let carol: BrowserSession;

  const page = async (session: BrowserSession) => {
    const res = await fetch(`${stack.url}/builds/${build.id}`, { headers: { cookie: session.cookie }, redirect: 'manual' });
    return { status: res.status, html: await res.text() };
  };
  let held: ReturnType<typeof heldReads>;
  const holdProducts = () => held.hold('build_products');
  const release = () => held?.release();
  const user = async (username: string, role: string) => {
    const made = await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: { username, email: `${username}@example.org`, password: `${username} secret`, role } });
    assert.equal(made.status, 200, made.text);
    return signIn(stack, username, `${username} secret`);
  };
  const buttons = (html: string) => [...html.matchAll(/data-action="([a-z]+)"/g)].map((m) => m[1]).sort();

  before(async () => {
    stack = await startTestStack({ worker: false });
    held = heldReads(stack.db);
    const project = await seedProject(stack.db, { name: 'shared-by-role' });
    const evaluation = await seedEvaluation(stack.db, (await seedJobset(stack.db, project.id, { name: 'main' })).id);
    build = await seedBuild(stack.db, { evaluation, status: 'failed', job_name: 'hello', priority: 100, started_at: new Date(), completed_at: new Date() });
    ann = await user('ann', 'restart-jobs');
    bob = await user('bob', 'restart-jobs');
    carol = await user('carol', 'read-only');
    const star = await stack.request('POST', '/api/v1/me/starred-jobs', { headers: sessionHeaders(ann), body: { project_id: build.project_id, jobset_id: build.jobset_id, job_name: 'hello' } });
    assert.equal(star.status, 200, star.text);
  });
  after(async () => {
    await release();
    await stack?.stop();
  });

  it('two viewers of one role share one render, each with their own name, CSRF token and star; another role renders its own', async () => {
    await holdProducts();
    try {
      const first = page(ann);
      await held.untilWaiting(1);
      // Another process changes the build meanwhile: a viewer that made a page of their own would show it.
      await stack.db('builds').where({ id: build.id }).update({ priority: 250 });
      const joined = page(bob);
      const otherRole = page(carol);
      await held.untilWaiting(2); // carol's render: a statement of its own
      assert.equal(await held.waitingStatements(), 2, 'bob made no render of his own');
      await release();
      const [annPage, bobPage, carolPage] = [await first, await joined, await otherRole];
      for (const p of [annPage, bobPage, carolPage]) {
        assert.equal(p.status, 200);
        assert.doesNotMatch(p.html, /rm-personal-/, 'every personal slot filled');
      }
      const priority = (html: string) => /<dt>Priority<\/dt><dd>(\d+)<\/dd>/.exec(html)?.[1];
      assert.equal(priority(annPage.html), '100');
      assert.equal(priority(bobPage.html), '100', 'bob got the render made for ann\'s role before the change');
      assert.equal(priority(carolPage.html), '250', 'carol\'s role rendered its own, after the change');

      assert.match(annPage.html, new RegExp(`<meta name="csrf-token" content="${ann.csrfToken}"`));
      assert.match(bobPage.html, new RegExp(`<meta name="csrf-token" content="${bob.csrfToken}"`));
      assert.ok(!annPage.html.includes(bob.csrfToken) && !bobPage.html.includes(ann.csrfToken), 'no token of another session');
      assert.match(annPage.html, /ann <span class="role">\(restart-jobs\)<\/span>/);
      assert.match(bobPage.html, /bob <span class="role">\(restart-jobs\)<\/span>/);
      assert.doesNotMatch(bobPage.html, /\bann\b/);
      assert.deepEqual(buttons(annPage.html), ['restart', 'unstar'], 'ann starred the job');
      assert.deepEqual(buttons(bobPage.html), ['restart', 'star'], 'bob did not');
      assert.deepEqual(buttons(carolPage.html), ['star'], 'a read-only user gets no button it cannot use');
    } finally {
      await release();
    }
  });

  it('a write through the app is on the next signed-in read of the page, and a star is the viewer\'s own', async () => {
    const before = await page(bob);
    assert.doesNotMatch(before.html, /<dt>Kept<\/dt>/);
    const kept = await stack.request('PUT', `/api/v1/builds/${build.id}/keep/true`, { key: stack.adminKey });
    assert.equal(kept.status, 200, kept.text);
    assert.match((await page(bob)).html, /<dt>Kept<\/dt>/);
    const star = await stack.request('POST', '/api/v1/me/starred-jobs', { headers: sessionHeaders(bob), body: { project_id: build.project_id, jobset_id: build.jobset_id, job_name: 'hello' } });
    assert.equal(star.status, 200, star.text);
    assert.deepEqual(buttons((await page(bob)).html), ['restart', 'unstar']);
    assert.deepEqual(buttons((await page(carol)).html), ['star']);
  });
});
