import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { sessionHeaders, signIn, type BrowserSession } from '../support/session';
import { seedBuild, seedEvaluation, seedJobset, seedProject, type Row } from '../support/seed';
import { createApiKey } from '../../api/queries/api-keys';

describe('starred jobs (/api/v1/me/starred-jobs)', () => {
  let stack: TestStack;
  let ann: BrowserSession;
  let annId: string;
  let annKey: string;
  let bob: BrowserSession;
  let project: Row;
  let jobset: Row;
  let newestHello: Row;

  const star = (session: BrowserSession, body: unknown) => stack.request('POST', '/api/v1/me/starred-jobs', { headers: sessionHeaders(session), body });
  const starCount = async () => Number((await stack.db('starred_jobs').count<{ count: string }[]>('* as count'))[0].count);

  before(async () => {
    stack = await startTestStack({ worker: false });
    for (const username of ['ann', 'bob']) {
      const made = await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: { username, email: `${username}@example.org`, password: `${username}s password` } });
      assert.equal(made.status, 200);
      if (username === 'ann') annId = made.body.id;
    }
    ann = await signIn(stack, 'ann', 'anns password');
    bob = await signIn(stack, 'bob', 'bobs password');
    annKey = (await createApiKey(stack.db, { name: 'anns-key', role: 'read-only', userId: annId })).key;

    project = await seedProject(stack.db, { name: 'nixpkgs' });
    jobset = await seedJobset(stack.db, project.id, { name: 'trunk' });
    const older = await seedEvaluation(stack.db, jobset.id, { created_at: new Date('2026-11-01T00:00:00Z') });
    const newer = await seedEvaluation(stack.db, jobset.id, { created_at: new Date('2026-11-02T00:00:00Z') });
    await seedBuild(stack.db, { evaluation: older, job_name: 'hello', status: 'succeeded', created_at: new Date('2026-11-01T00:00:00Z') });
    newestHello = await seedBuild(stack.db, { evaluation: newer, job_name: 'hello', status: 'failed', created_at: new Date('2026-11-02T00:00:00Z'), completed_at: new Date('2026-11-02T00:10:00Z') });
    await seedBuild(stack.db, { evaluation: newer, job_name: 'coreutils', status: 'pending', created_at: new Date('2026-11-02T00:00:00Z') });
  });
  after(async () => stack?.stop());

  it('starring a job answers the StarredJob with the job\'s newest build and its status', async () => {
    const res = await star(ann, { project_id: project.id, jobset_id: jobset.id, job_name: 'hello' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.user_id, annId);
    assert.equal(res.body.project_id, project.id);
    assert.equal(res.body.jobset_id, jobset.id);
    assert.equal(res.body.job_name, 'hello');
    assert.equal(res.body.project_name, 'nixpkgs');
    assert.equal(res.body.jobset_name, 'trunk');
    assert.equal(res.body.latest_build.id, newestHello.id);
    assert.equal(res.body.latest_build.status, 'failed');
    assert.equal(res.body.latest_build.completed_at, '2026-11-02T00:10:00.000Z');
  });

  it('starring the same job twice is idempotent: 200 with the same star, and one row', async () => {
    const before = await starCount();
    const first = await star(ann, { project_id: project.id, jobset_id: jobset.id, job_name: 'hello' });
    const again = await star(ann, { project_id: project.id, jobset_id: jobset.id, job_name: 'hello' });
    assert.equal(again.status, 200);
    assert.equal(again.body.id, first.body.id);
    assert.equal(await starCount(), before);
  });

  it('the list shows only the current user\'s stars, each with its job\'s latest status, which follows new builds', async () => {
    await star(ann, { project_id: project.id, jobset_id: jobset.id, job_name: 'coreutils' });
    await star(bob, { project_id: project.id, jobset_id: jobset.id, job_name: 'coreutils' });
    const list = await stack.request('GET', '/api/v1/me/starred-jobs', { headers: sessionHeaders(ann, false) });
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.map((s: Row) => [s.job_name, s.latest_build?.status]), [['coreutils', 'pending'], ['hello', 'failed']]);
    assert.ok(list.body.every((s: Row) => s.user_id === annId));

    const third = await seedEvaluation(stack.db, jobset.id);
    await seedBuild(stack.db, { evaluation: third, job_name: 'hello', status: 'succeeded' });
    const later = await stack.request('GET', '/api/v1/me/starred-jobs', { key: annKey });
    assert.equal(later.status, 200, 'an API key owned by a user reads that user\'s stars');
    assert.equal(later.body.find((s: Row) => s.job_name === 'hello').latest_build.status, 'succeeded');
  });

  it('the list pages with limit and offset', async () => {
    const page = await stack.request('GET', '/api/v1/me/starred-jobs?limit=1&offset=1', { headers: sessionHeaders(ann, false) });
    assert.equal(page.status, 200);
    assert.deepEqual(page.body.map((s: Row) => s.job_name), ['hello']);
  });

  it('starring a job that does not exist, or a jobset of another project, is a 404 and stores nothing', async () => {
    const other = await seedProject(stack.db);
    const before = await starCount();
    const cases = [
      { project_id: project.id, jobset_id: jobset.id, job_name: 'no-such-job' },
      { project_id: other.id, jobset_id: jobset.id, job_name: 'hello' },
      { project_id: project.id, jobset_id: '00000000-0000-4000-8000-000000000000', job_name: 'hello' },
    ];
    for (const body of cases) {
      const res = await star(ann, body);
      assert.equal(res.status, 404, JSON.stringify(body));
      assert.equal(res.body.error_code, 'NOT_FOUND');
    }
    assert.equal(await starCount(), before);
  });

  it('a bad body is a 400 naming the field, and stores nothing', async () => {
    const before = await starCount();
    const cases: Array<[unknown, string]> = [
      [{ jobset_id: jobset.id, job_name: 'hello' }, 'body.project_id'],
      [{ project_id: 'not-a-uuid', jobset_id: jobset.id, job_name: 'hello' }, 'body.project_id'],
      [{ project_id: project.id, jobset_id: jobset.id, job_name: '' }, 'body.job_name'],
      [{ project_id: project.id, job_name: 'hello' }, 'body.jobset_id'],
    ];
    for (const [body, field] of cases) {
      const res = await star(ann, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.error_code, 'VALIDATION_ERROR');
      assert.ok(res.body.details.some((d: { field: string }) => d.field === field), `${JSON.stringify(res.body.details)} names ${field}`);
    }
    assert.equal(await starCount(), before);
  });

  it('unstarring removes the star (204); another user\'s star or an unknown id is a 404 and stays', async () => {
    const bobs = (await stack.request('GET', '/api/v1/me/starred-jobs', { headers: sessionHeaders(bob, false) })).body[0];
    const byAnn = await stack.request('DELETE', `/api/v1/me/starred-jobs/${bobs.id}`, { headers: sessionHeaders(ann) });
    assert.equal(byAnn.status, 404);
    assert.ok(await stack.db('starred_jobs').where({ id: bobs.id }).first(), 'bob\'s star stays');

    const unknown = await stack.request('DELETE', '/api/v1/me/starred-jobs/00000000-0000-4000-8000-000000000000', { headers: sessionHeaders(ann) });
    assert.equal(unknown.status, 404);

    const byBob = await stack.request('DELETE', `/api/v1/me/starred-jobs/${bobs.id}`, { headers: sessionHeaders(bob) });
    assert.equal(byBob.status, 204);
    assert.equal(await stack.db('starred_jobs').where({ id: bobs.id }).first(), undefined);
  });

  it('stars need a user: anonymous is 401, a key that belongs to no user is 403, a cookie without CSRF header is 403', async () => {
    const before = await starCount();
    const body = { project_id: project.id, jobset_id: jobset.id, job_name: 'hello' };
    assert.equal((await stack.request('GET', '/api/v1/me/starred-jobs')).status, 401);
    assert.equal((await stack.request('POST', '/api/v1/me/starred-jobs', { body })).status, 401);
    const userless = await stack.keyFor('admin');
    const listed = await stack.request('GET', '/api/v1/me/starred-jobs', { key: userless });
    assert.equal(listed.status, 403);
    assert.equal(listed.body.error_code, 'FORBIDDEN');
    assert.equal((await stack.request('POST', '/api/v1/me/starred-jobs', { key: userless, body })).status, 403);
    assert.equal((await stack.request('POST', '/api/v1/me/starred-jobs', { headers: sessionHeaders(bob, false), body })).status, 403);
    assert.equal(await starCount(), before);
  });

  it('star and unstar are written to the audit log', async () => {
    const rows = await stack.db('audit_log').where({ target_kind: 'starred_job' });
    assert.ok(rows.some((r) => r.action === 'POST /api/v1/me/starred-jobs' && r.actor_id === annId));
    assert.ok(rows.some((r) => r.action === 'DELETE /api/v1/me/starred-jobs/{id}' && r.actor_name === 'bob'));
  });
});
