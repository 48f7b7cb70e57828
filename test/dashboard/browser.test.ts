import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startTestStack, type TestStack } from '../support/stack';
import { makeGitRepo, type GitFixtureRepo } from '../support/git-fixture';
import { eventually, nonce } from '../support/pipeline';
import { keepScreenshot, launchChromium, seriousAccessibilityViolations, type AxeFinding } from '../support/browser';

const DASHBOARD_FIXTURE = path.resolve(__dirname, '..', 'fixtures', 'dashboard');
const STEP_TIMEOUT_MS = 180_000;

/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core) against the real stack:
 * Temporal, PostgreSQL, the worker and its own Nix with three slots. Each page visited is screenshotted
 * and checked with axe-core.
 */
describe('the dashboard in Chromium: from sign-in to live logs, cancel and restart', () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let gate: string;
  let browser: Browser;
  let admin: BrowserContext;
  let page: Page;
  const findings = new Map<string, AxeFinding[]>();
  const ids: { project?: string; jobset?: string; evaluation?: string; builds?: Record<string, string> } = {};

  const release = (name: string) => fs.writeFileSync(path.join(gate, name), 'go\n');

  /** Screenshot and accessibility check of the page as it stands, under `name`. */
  const record = async (p: Page, name: string) => {
    await keepScreenshot(p, name);
    findings.set(name, await seriousAccessibilityViolations(p));
  };
  const badgeOf = (p: Page, buildId: string) => p.locator(`.build-head [data-build-status="${buildId}"]`);
  /** A marker on the window: still there means the page was never reloaded. */
  const markNoReload = (p: Page) => p.evaluate(() => ((window as unknown as { untouched: boolean }).untouched = true));
  const stillUntouched = (p: Page) => p.evaluate(() => (window as unknown as { untouched?: boolean }).untouched === true);

  before(async () => {
    stack = await startTestStack({ worker: true, env: { RINGMASTER_LOCAL_MAX_JOBS: '3' } });
    gate = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-dashboard-gate-'));
    fs.chmodSync(gate, 0o755);
    repo = await makeGitRepo(DASHBOARD_FIXTURE);
    await repo.commitChange('greeting', `dash-${nonce()}\n`);
    await repo.commitChange('gate', `${gate}\n`);
    for (const [username, role] of [['ada', 'admin'], ['rita', 'read-only']] as const) {
      const made = await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: { username, email: `${username}@example.org`, password: `${username} secret`, role } });
      assert.equal(made.status, 200, made.text);
    }
    browser = await launchChromium();
    admin = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    page = await admin.newPage();
    page.setDefaultTimeout(30_000);
    page.on('dialog', (dialog) => void dialog.accept());
  });

  after(async () => {
    // Whatever a failed test left waiting is released, so no build keeps a shell running.
    if (gate) for (const name of ['release-ticker', 'release-blocker', 'fixed']) fs.writeFileSync(path.join(gate, name), 'go\n');
    await browser?.close();
    await stack?.stop();
    if (gate) fs.rmSync(gate, { recursive: true, force: true });
  });

  it('signs in with a password', async () => {
    await page.goto(`${stack.url}/login`);
    await record(page, 'login');
    await page.locator('#username').fill('ada');
    await page.locator('#password').fill('ada secret');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL(`${stack.url}/`);
    await assert.doesNotReject(page.getByText('ada', { exact: false }).first().waitFor());
    assert.equal(await page.getByRole('link', { name: 'Admin' }).count(), 1, 'an admin sees the admin page in the navigation');
    await record(page, 'home-empty');
  });

  it('creates a project and a jobset through the forms', async () => {
    await page.goto(`${stack.url}/projects`);
    const form = page.getByRole('form', { name: 'New project' });
    await form.getByLabel('Name').fill(`dash-${nonce()}`);
    await form.getByLabel('Repository URL').fill(repo.url);
    await form.getByRole('button', { name: 'Create project' }).click();
    await page.waitForURL(/\/projects\/[0-9a-f-]{36}$/);
    ids.project = page.url().split('/').pop();
    const jobsetForm = page.getByRole('form', { name: 'New jobset' });
    await jobsetForm.getByLabel('Name').fill('main');
    await jobsetForm.getByLabel('Nix expression (file of the repository)').fill('dashboard.nix');
    await record(page, 'project');
    await jobsetForm.getByRole('button', { name: 'Create jobset' }).click();
    await page.waitForURL(/\/jobsets\/[0-9a-f-]{36}$/);
    ids.jobset = page.url().split('/').pop();
    const row = await stack.db('jobsets').where({ id: ids.jobset }).first();
    assert.equal(row.project_id, ids.project);
    assert.equal(row.nix_expression, 'dashboard.nix');
  });

  it('a bad form answer names the field and creates nothing', async () => {
    await page.goto(`${stack.url}/projects`);
    const form = page.getByRole('form', { name: 'New project' });
    await form.getByLabel('Name').fill('not a valid name!');
    await form.getByLabel('Repository URL').fill(repo.url);
    await form.getByRole('button', { name: 'Create project' }).click();
    await assert.doesNotReject(form.getByRole('alert').filter({ hasText: 'name' }).waitFor());
    assert.equal(await stack.db('projects').where({ name: 'not a valid name!' }).first(), undefined);
  });

  it('triggers an evaluation and sees its builds', async () => {
    await page.goto(`${stack.url}/jobsets/${ids.jobset}`);
    await page.getByRole('button', { name: 'Evaluate now' }).click();
    await page.waitForURL(/\/evaluations\/[0-9a-f-]{36}$/);
    ids.evaluation = page.url().split('/').pop();
    ids.builds = await eventually(
      'the evaluation to record its three builds',
      async () => {
        const rows = await stack.db('builds').where({ evaluation_id: ids.evaluation });
        return rows.length === 3 ? Object.fromEntries(rows.map((r) => [r.job_name, r.id as string])) : undefined;
      },
      STEP_TIMEOUT_MS,
    );
    await page.reload();
    for (const job of ['ticker', 'blocker', 'flaky']) await page.getByRole('link', { name: job, exact: true }).first().waitFor();
    await record(page, 'evaluation');
  });

  it("watches a build's log grow live", async () => {
    await page.goto(`${stack.url}/builds/${ids.builds!.ticker}`);
    await markNoReload(page);
    const log = page.getByRole('log', { name: 'Build log' });
    await log.getByText('tick 2').waitFor({ timeout: STEP_TIMEOUT_MS });
    const linesBefore = (await log.textContent())!.split('\n').filter(Boolean).length;
    await log.getByText(`tick ${linesBefore + 3}`, { exact: false }).waitFor({ timeout: 60_000 });
    assert.ok(await stillUntouched(page), 'the log grew without a reload');
    await badgeOf(page, ids.builds!.ticker).filter({ hasText: 'running' }).waitFor();
    await record(page, 'build-running');
    release('release-ticker');
    await badgeOf(page, ids.builds!.ticker).filter({ hasText: 'succeeded' }).waitFor({ timeout: STEP_TIMEOUT_MS });
    assert.ok(await stillUntouched(page), 'the status changed without a reload');
    // The log stream's `end` and the status change come on separate streams: the end follows shortly.
    await page.waitForFunction((el) => el?.getAttribute('data-state') === 'ended', await log.elementHandle(), { timeout: 30_000 });
    assert.equal(await log.getAttribute('data-state'), 'ended');
  });

  it('cancels a running build and sees its status change without reloading', async () => {
    await page.goto(`${stack.url}/builds/${ids.builds!.blocker}`);
    await markNoReload(page);
    await badgeOf(page, ids.builds!.blocker).filter({ hasText: 'running' }).waitFor({ timeout: STEP_TIMEOUT_MS });
    await page.getByRole('button', { name: 'Cancel' }).click();
    await badgeOf(page, ids.builds!.blocker).filter({ hasText: 'cancelled' }).waitFor({ timeout: 60_000 });
    assert.ok(await stillUntouched(page), 'the status changed without a reload');
    await page.getByRole('button', { name: 'Restart' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Cancel' }).isVisible(), false, 'a cancelled build offers no cancel');
    await record(page, 'build-cancelled');
    const row = await stack.db('builds').where({ id: ids.builds!.blocker }).first();
    assert.equal(row.status, 'cancelled');
  });

  it('restarts a failed build, which then succeeds', async () => {
    await page.goto(`${stack.url}/builds/${ids.builds!.flaky}`);
    await markNoReload(page);
    await badgeOf(page, ids.builds!.flaky).filter({ hasText: 'failed' }).waitFor({ timeout: STEP_TIMEOUT_MS });
    await record(page, 'build-failed');
    release('fixed');
    await page.getByRole('button', { name: 'Restart' }).click();
    await badgeOf(page, ids.builds!.flaky).filter({ hasText: 'succeeded' }).waitFor({ timeout: STEP_TIMEOUT_MS });
    assert.ok(await stillUntouched(page), 'the restarted build was followed without a reload');
    const row = await stack.db('builds').where({ id: ids.builds!.flaky }).first();
    assert.equal(row.status, 'succeeded');
    assert.ok(row.retry_count >= 0);
  });

  it('shows the jobset matrix, the queue, the builders and the admin pages, in light and dark mode', async () => {
    for (const [name, url] of [
      ['jobset', `/jobsets/${ids.jobset}`],
      ['home', '/'],
      ['projects', '/projects'],
      ['queue', '/queue'],
      ['builders', '/builders'],
      ['admin', '/admin'],
    ]) {
      const res = await page.goto(`${stack.url}${url}`);
      assert.equal(res?.status(), 200, url);
      await record(page, name);
    }
    // The system's dark mode: the same pages, the same contrast checks.
    await page.emulateMedia({ colorScheme: 'dark' });
    for (const [name, url] of [
      ['home-dark', '/'],
      ['build-dark', `/builds/${ids.builds!.flaky}`],
      ['evaluation-dark', `/evaluations/${ids.evaluation}`],
    ]) {
      await page.goto(`${stack.url}${url}`);
      await record(page, name);
    }
    await page.emulateMedia({ colorScheme: 'light' });
    await page.goto(`${stack.url}/jobsets/${ids.jobset}`);
    const matrix = page.getByRole('table', { name: /Status of each job/ });
    for (const job of ['ticker', 'blocker', 'flaky']) await matrix.getByRole('rowheader', { name: job }).waitFor();
  });

  it('a read-only user sees no action buttons', async () => {
    const reader = await browser.newContext({ viewport: { width: 390, height: 844 } });
    try {
      const p = await reader.newPage();
      await p.goto(`${stack.url}/login`);
      await p.locator('#username').fill('rita');
      await p.locator('#password').fill('rita secret');
      await p.getByRole('button', { name: 'Sign in', exact: true }).click();
      await p.waitForURL(`${stack.url}/`);
      for (const url of [`/builds/${ids.builds!.blocker}`, `/builds/${ids.builds!.flaky}`, `/jobsets/${ids.jobset}`, `/projects/${ids.project}`, '/projects', `/evaluations/${ids.evaluation}`]) {
        await p.goto(`${stack.url}${url}`);
        const header = await p.locator('header').getByRole('button').allTextContents();
        assert.deepEqual(header.map((b) => b.trim()), ['Search', 'Sign out'], `${url}: the header's search and "Sign out"`);
        // Starring is every signed-in user's own (POST /api/v1/me/starred-jobs): the only action a build page leaves a read-only user.
        const actions = await p.locator('main').getByRole('button').allTextContents();
        assert.deepEqual(actions.map((b) => b.trim()), url.startsWith('/builds/') ? ['Star job'] : [], `${url} shows no action to a read-only user`);
        assert.equal(await p.locator('form.api-form').count(), url.startsWith('/builds/') ? 1 : 0, url);
      }
      assert.equal(await p.getByRole('link', { name: 'Admin' }).count(), 0);
      await p.goto(`${stack.url}/builds/${ids.builds!.flaky}`);
      await record(p, 'build-read-only-phone');
    } finally {
      await reader.close();
    }
  });

  it('axe-core finds no serious or critical violation on any page', () => {
    assert.ok(findings.size >= 10, `checked ${findings.size} pages`);
    const bad = [...findings].filter(([, list]) => list.length > 0);
    assert.deepEqual(bad, []);
  });
});
