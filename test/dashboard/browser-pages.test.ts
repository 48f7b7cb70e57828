import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startTestStack, type TestStack } from '../support/stack';
import { seedBuild, seedEvaluation, seedJobset, seedProject, type Row } from '../support/seed';
import { eventually } from '../support/pipeline';
import { keepScreenshot, launchChromium, seriousAccessibilityViolations, type AxeFinding } from '../support/browser';

/**
 * The dashboard's channels, search, starred jobs, metrics, webhooks and notification tasks pages in
 * Debian's Chromium against the real API, PostgreSQL and Temporal (no worker: the read model is seeded).
 * Each page is screenshotted and checked with axe-core; the star toggle and the notification retry are
 * clicked through; a read-only user sees none of the buttons it cannot use; GitHub and LDAP sign-in
 * appear only once configured.
 */
describe('the dashboard in Chromium: channels, search, starred jobs, metrics, webhooks, notification tasks', () => {
  let stack: TestStack;
  let browser: Browser;
  let admin: BrowserContext;
  let page: Page;
  let project: Row;
  let jobset: Row;
  let failing: Row;
  let channel: Row;
  let task: Row;
  const findings = new Map<string, AxeFinding[]>();

  const record = async (p: Page, name: string) => {
    await keepScreenshot(p, name);
    findings.set(name, await seriousAccessibilityViolations(p));
  };
  const signIn = async (p: Page, username: string) => {
    await p.goto(`${stack.url}/login`);
    await p.locator('#username').fill(username);
    await p.locator('#password').fill(`${username} secret`);
    await p.getByRole('button', { name: 'Sign in', exact: true }).click();
    await p.waitForURL(`${stack.url}/`);
  };
  const configure = async (contents: object) => {
    const res = await stack.request('PUT', '/api/v1/admin/config', { key: stack.adminKey, body: { contents: JSON.stringify(contents) } });
    assert.equal(res.status, 200, res.text);
  };

  before(async () => {
    stack = await startTestStack({ worker: false });
    for (const [username, role] of [['ada', 'admin'], ['rita', 'read-only']] as const) {
      const made = await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: { username, email: `${username}@example.org`, password: `${username} secret`, role } });
      assert.equal(made.status, 200, made.text);
    }
    project = await seedProject(stack.db, { name: 'pages-demo' });
    jobset = await seedJobset(stack.db, project.id, { name: 'main' });
    const older = await seedEvaluation(stack.db, jobset.id, { created_at: new Date(Date.now() - 3_600_000) });
    const newer = await seedEvaluation(stack.db, jobset.id);
    const started = new Date(Date.now() - 120_000);
    await seedBuild(stack.db, { evaluation: older, job_name: 'hello', status: 'succeeded', started_at: started, completed_at: new Date(started.getTime() + 42_000) });
    failing = await seedBuild(stack.db, { evaluation: newer, job_name: 'hello', status: 'failed', started_at: started, completed_at: new Date() });
    await seedBuild(stack.db, { evaluation: newer, job_name: 'world', status: 'pending', system: 'aarch64-linux' });
    [channel] = await stack.db('channels').insert({ project_id: project.id, name: 'pages-stable', jobset_id: jobset.id, current_evaluation_id: older.id }).returning('*');
    const hook = await stack.request('POST', `/api/v1/projects/${project.id}/webhooks`, { key: stack.adminKey, body: { forge_type: 'github', secret: 'a-webhook-secret-1234' } });
    assert.equal(hook.status, 200, hook.text);
    [task] = await stack
      .db('notification_tasks')
      .insert({ notification_type: 'webhook', payload: '{}', status: 'failed', attempts: 5, max_attempts: 5, last_error: 'HTTP 503 from the hook', target_name: 'ops-hook', event: 'build_finished', order_key: `ops-hook:${stack.taskQueue}`, state: 'failure' })
      .returning('*');
    browser = await launchChromium();
    admin = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    page = await admin.newPage();
    page.setDefaultTimeout(30_000);
    page.on('dialog', (dialog) => void dialog.accept());
    await signIn(page, 'ada');
  });

  after(async () => {
    // The retried task's delivery workflow has no worker here: end it, so nothing is left running on Temporal.
    const retried = task && (await stack?.db('notification_tasks').where({ id: task.id }).first());
    if (retried?.workflow_id) await stack.temporal.client.workflow.getHandle(retried.workflow_id).terminate('test over').catch(() => {});
    await browser?.close();
    await stack?.stop();
  });

  it('shows every new page, in light and dark mode and at a phone width', async () => {
    // The metrics page shows its series (read from the hourly rollup) before its screenshots.
    await eventually('the metrics series to show', async () => ((await (await fetch(`${stack.url}/metrics`)).text()).includes('<svg') ? true : undefined), 10_000);
    for (const [name, url] of [
      ['jobset', `/jobsets/${jobset.id}`],
      ['channels', '/channels'],
      ['channel', `/channels/${channel.id}`],
      ['search', '/search?q=hello'],
      ['search-failed', '/search?status=failed'],
      ['metrics', '/metrics'],
      ['webhooks', `/projects/${project.id}/webhooks`],
      ['notification-tasks', '/admin/notification-tasks'],
      ['admin-users', '/admin'],
    ]) {
      const res = await page.goto(`${stack.url}${url}`);
      assert.equal(res?.status(), 200, url);
      await record(page, name);
    }
    assert.equal(await page.getByText('a-webhook-secret-1234').count(), 0);
    await page.emulateMedia({ colorScheme: 'dark' });
    for (const [name, url] of [
      ['jobset-dark', `/jobsets/${jobset.id}`],
      ['metrics-dark', '/metrics'],
      ['search-dark', '/search?q=hello'],
      ['notification-tasks-dark', '/admin/notification-tasks'],
    ]) {
      await page.goto(`${stack.url}${url}`);
      await record(page, name);
    }
    await page.emulateMedia({ colorScheme: 'light' });
    const phone = await admin.newPage();
    try {
      await phone.setViewportSize({ width: 390, height: 844 });
      await phone.goto(`${stack.url}/metrics`);
      const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 1, `the metrics page fits a phone's width (overflow ${overflow} px)`);
      await record(phone, 'metrics-phone');
    } finally {
      await phone.close();
    }
  });

  it('searches from the box in the header and narrows the builds by the form’s filters', async () => {
    await page.goto(`${stack.url}/builders`);
    const box = page.getByRole('searchbox', { name: 'Search jobs, projects and builds' });
    await box.fill('hell');
    await box.press('Enter');
    await page.waitForURL(`${stack.url}/search?q=hell`);
    await page.getByRole('link', { name: 'pages-demo / main' }).waitFor();
    const builds = page.getByRole('table', { name: 'Builds that match, newest first' });
    assert.equal(await builds.getByRole('link', { name: 'hello' }).count(), 2);
    await page.getByLabel('Status').selectOption('failed');
    await page.getByRole('button', { name: 'Search builds' }).click();
    await page.waitForURL(/status=failed/);
    assert.equal(await builds.getByRole('link', { name: 'hello' }).count(), 1);
  });

  it('stars a job from its build page, finds it among the starred jobs, and unstars it there', async () => {
    await page.goto(`${stack.url}/builds/${failing.id}`);
    await page.getByRole('button', { name: 'Star job' }).click();
    await page.getByRole('button', { name: 'Unstar job' }).waitFor();
    const ada = await stack.db('users').where({ username: 'ada' }).first();
    const star = await stack.db('starred_jobs').where({ user_id: ada.id, jobset_id: failing.jobset_id, job_name: 'hello' }).first();
    assert.ok(star, 'the star is recorded');
    await page.getByRole('link', { name: 'Starred' }).click();
    await page.waitForURL(`${stack.url}/starred`);
    const row = page.getByRole('row').filter({ hasText: 'pages-demo / main' });
    await row.getByText('failed').waitFor();
    await record(page, 'starred');
    await row.getByRole('button', { name: 'Unstar hello' }).click();
    await page.getByText('No starred job yet').waitFor();
    assert.equal(await stack.db('starred_jobs').where({ id: star.id }).first(), undefined);
  });

  it('retries a failed notification task with its button: the task is requeued into its delivery workflow', async () => {
    await page.goto(`${stack.url}/admin/notification-tasks?status=failed`);
    const row = page.locator(`tr[data-task="${task.id}"]`);
    await row.getByText('HTTP 503 from the hook').waitFor();
    // The script reloads the page once the API has answered 202.
    const reloaded = page.waitForEvent('load');
    await row.getByRole('button', { name: 'Retry' }).click();
    await reloaded;
    assert.equal(await row.count(), 0, 'no longer among the failed tasks');
    const requeued = await stack.db('notification_tasks').where({ id: task.id }).first();
    assert.equal(requeued.status, 'pending');
    assert.equal(requeued.attempts, 0);
    assert.ok(requeued.workflow_id, 'handed to its delivery workflow');
    const audit = await stack.db('audit_log').where({ target_kind: 'notification_task', target_id: task.id, actor_name: 'ada' }).first();
    assert.ok(audit, 'the retry through the cookie (with the CSRF token) is audited as ada');
    await page.goto(`${stack.url}/admin/notification-tasks`);
    await page.locator(`tr[data-task="${task.id}"]`).getByText('pending').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Retry' }).count(), 0, 'a pending task offers no retry');
    await record(page, 'notification-tasks-retried');
  });

  it('a read-only user sees no action button on the new pages (only starring, which is its own)', async () => {
    const reader = await browser.newContext({ viewport: { width: 390, height: 844 } });
    try {
      const p = await reader.newPage();
      await signIn(p, 'rita');
      for (const url of ['/channels', `/channels/${channel.id}`, '/search?q=hello', '/starred', '/metrics', `/projects/${project.id}/webhooks`, `/builds/${failing.id}`]) {
        await p.goto(`${stack.url}${url}`);
        const header = (await p.locator('header').getByRole('button').allTextContents()).map((b) => b.trim());
        assert.deepEqual(header, ['Search', 'Sign out'], url);
        const actions = (await p.locator('main form.api-form').getByRole('button').allTextContents()).map((b) => b.trim());
        assert.deepEqual(actions, url.startsWith('/builds/') ? ['Star job'] : [], url);
      }
      const refused = await p.goto(`${stack.url}/admin/notification-tasks`);
      assert.equal(refused?.status(), 403);
      await p.goto(`${stack.url}/projects/${project.id}/webhooks`);
      await record(p, 'webhooks-read-only-phone');
    } finally {
      await reader.close();
    }
  });

  it('offers GitHub and LDAP sign-in only once the config file enables them', async () => {
    const visitor = await browser.newContext({ viewport: { width: 1000, height: 800 } });
    try {
      const p = await visitor.newPage();
      await p.goto(`${stack.url}/login`);
      assert.equal(await p.getByRole('link', { name: 'Sign in with GitHub' }).count(), 0);
      assert.equal(await p.getByRole('button', { name: 'Sign in with LDAP' }).count(), 0);
      await configure({ github_oauth: { client_id: 'id', client_secret: 'secret' }, ldap: { url: 'ldap://127.0.0.1:1', base_dn: 'dc=example,dc=org' } });
      await p.reload();
      await p.getByRole('link', { name: 'Sign in with GitHub' }).waitFor();
      await p.getByRole('button', { name: 'Sign in with LDAP' }).waitFor();
      await record(p, 'login-github-ldap');
      await configure({ github_oauth: { client_id: 'id', client_secret: 'secret', enabled: false } });
      await p.reload();
      assert.equal(await p.getByRole('link', { name: 'Sign in with GitHub' }).count(), 0);
      assert.equal(await p.getByRole('button', { name: 'Sign in with LDAP' }).count(), 0);
    } finally {
      await configure({});
      await visitor.close();
    }
  });

  it('an admin creates a channel and promotes an evaluation with the forms, script turned off', async () => {
    const side = await seedJobset(stack.db, project.id, { name: 'side' });
    const first = await seedEvaluation(stack.db, side.id, { created_at: new Date(Date.now() - 60_000) });
    await seedBuild(stack.db, { evaluation: first, job_name: 'hello', status: 'succeeded' });
    const noScript = await browser.newContext({ viewport: { width: 1000, height: 900 }, javaScriptEnabled: false });
    try {
      const p = await noScript.newPage();
      p.setDefaultTimeout(30_000);
      await signIn(p, 'ada');
      await p.goto(`${stack.url}/channels`);
      await p.locator('#c-name').fill('side-stable');
      await p.locator('#c-project').fill('pages-demo');
      await p.locator('#c-jobset').fill('side');
      // Screenshots only: axe needs script in the page (these forms are checked by axe on the admin's pages above).
      await keepScreenshot(p, 'channel-create-form');
      await p.getByRole('button', { name: 'Create channel' }).click();
      await p.waitForURL(/\/channels\/[0-9a-f-]{36}$/);
      const created = await stack.db('channels').where({ name: 'side-stable' }).first();
      assert.equal(p.url(), `${stack.url}/channels/${created.id}`);
      assert.equal(created.current_evaluation_id, first.id, 'it starts at the newest good evaluation');
      await p.getByRole('heading', { name: 'Channel side-stable' }).waitFor();

      const second = await seedEvaluation(stack.db, side.id);
      await seedBuild(stack.db, { evaluation: second, job_name: 'hello', status: 'succeeded' });
      await p.reload();
      await p.locator('#p-evaluation').selectOption(second.id);
      await keepScreenshot(p, 'channel-promote-form');
      await p.getByRole('button', { name: 'Promote' }).click();
      await p.waitForURL(`${stack.url}/channels/${created.id}`);
      assert.equal((await stack.db('channels').where({ id: created.id }).first()).current_evaluation_id, second.id);
      assert.equal(await p.locator(`dd a[href="/evaluations/${second.id}"]`).count(), 1, 'the page shows the evaluation it serves now');
    } finally {
      await noScript.close();
    }
  });

  it('axe-core finds no serious or critical violation on any of these pages', () => {
    assert.ok(findings.size >= 15, `checked ${findings.size} pages`);
    const bad = [...findings].filter(([, list]) => list.length > 0);
    assert.deepEqual(bad, []);
  });
});
