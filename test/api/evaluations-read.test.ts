import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { seedBuild, seedEvaluation, seedJobset, seedProject, type Row } from '../support/seed';

const EVALUATION_FIELDS = [
  'id', 'jobset_id', 'commit_hash', 'evaluation_time', 'status', 'error_message', 'inputs_hash', 'trigger_kind', 'hidden',
  'source_scope', 'superseded_by', 'created_at',
];

describe('evaluations (reads)', () => {
  let stack: TestStack;
  let project: Row;
  let otherProject: Row;
  let jobset: Row;
  let otherJobset: Row;
  let previous: Row;
  let current: Row;
  let failedEval: Row;
  let foreign: Row;

  before(async () => {
    stack = await startTestStack({ worker: false });
    const db = stack.db;
    const t = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000);
    project = await seedProject(db);
    otherProject = await seedProject(db);
    jobset = await seedJobset(db, project.id);
    otherJobset = await seedJobset(db, otherProject.id);
    previous = await seedEvaluation(db, jobset.id, { created_at: t(60), started_at: t(60), completed_at: t(59), trigger_kind: 'source_change' });
    current = await seedEvaluation(db, jobset.id, {
      created_at: t(30), started_at: new Date(t(30).getTime()), completed_at: new Date(t(30).getTime() + 12_500), evaluation_time: t(30),
      inputs_hash: 'sha256:abc', workflow_id: 'eval-x', trigger_kind: 'manual',
    });
    await db('evaluations').where({ id: previous.id }).update({ superseded_by: current.id });
    failedEval = await seedEvaluation(db, jobset.id, { created_at: t(10), status: 'failed', error_message: 'syntax error' });
    foreign = await seedEvaluation(db, otherJobset.id, { created_at: t(5), status: 'running' });

    await db('evaluation_inputs').insert([
      { evaluation_id: current.id, name: 'src', input_type: 'git', value: 'file:///srv/repo', revision: 'deadbeef' },
      { evaluation_id: current.id, name: 'debug', input_type: 'boolean', value: 'false' },
    ]);
    await db('evaluation_errors').insert([
      { evaluation_id: current.id, job_name: 'tests.broken', error_message: 'attribute missing' },
    ]);

    // previous: same, flaky (succeeded), gone, changed, regress (succeeded), fixme (failed)
    // current:  same, flaky (failed) [same drv], changed [new drv], regress (failed) [new drv], fixme (succeeded), added
    const same = await seedBuild(db, { evaluation: previous, job_name: 'same', status: 'succeeded' });
    await seedBuild(db, { evaluation: current, job_name: 'same', status: 'succeeded', drv_path: same.drv_path });
    const flaky = await seedBuild(db, { evaluation: previous, job_name: 'flaky', status: 'succeeded' });
    await seedBuild(db, { evaluation: current, job_name: 'flaky', status: 'timeout', drv_path: flaky.drv_path });
    await seedBuild(db, { evaluation: previous, job_name: 'gone', status: 'succeeded' });
    await seedBuild(db, { evaluation: previous, job_name: 'changed', status: 'succeeded' });
    await seedBuild(db, { evaluation: current, job_name: 'changed', status: 'pending' });
    await seedBuild(db, { evaluation: previous, job_name: 'regress', status: 'succeeded' });
    await seedBuild(db, { evaluation: current, job_name: 'regress', status: 'failed' });
    await seedBuild(db, { evaluation: previous, job_name: 'fixme', status: 'failed' });
    await seedBuild(db, { evaluation: current, job_name: 'fixme', status: 'succeeded' });
    await seedBuild(db, { evaluation: current, job_name: 'added', status: 'running' });
  });
  after(async () => stack?.stop());

  it('the list is a page object, newest first', async () => {
    const res = await stack.request('GET', '/api/v1/evaluations');
    assert.equal(res.status, 200);
    assert.equal(res.body.total, 4);
    assert.equal(res.body.limit, 50);
    assert.equal(res.body.offset, 0);
    assert.deepEqual(res.body.items.map((e: any) => e.id), [foreign.id, failedEval.id, current.id, previous.id]);
    for (const field of EVALUATION_FIELDS) assert.ok(field in res.body.items[0], `missing ${field}`);
    const page = await stack.request('GET', '/api/v1/evaluations?limit=1&offset=2');
    assert.deepEqual(page.body.items.map((e: any) => e.id), [current.id]);
    assert.equal(page.body.total, 4);
  });

  it('the list filters by project, jobset and status', async () => {
    const q = async (query: string) => (await stack.request('GET', `/api/v1/evaluations?${query}`)).body;
    assert.deepEqual((await q(`project_id=${otherProject.id}`)).items.map((e: any) => e.id), [foreign.id]);
    assert.equal((await q(`jobset_id=${jobset.id}`)).total, 3);
    assert.deepEqual((await q('status=failed')).items.map((e: any) => e.id), [failedEval.id]);
    assert.equal((await q(`project_id=${project.id}&status=completed`)).total, 2);
    const bad = await stack.request('GET', '/api/v1/evaluations?status=done');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.details[0].field, 'query.status');
    const badProject = await stack.request('GET', '/api/v1/evaluations?project_id=x');
    assert.equal(badProject.body.details[0].field, 'query.project_id');
  });

  it('GET /evaluations/{id} has the circus fields plus inputs, build counts, errors and timing', async () => {
    const res = await stack.request('GET', `/api/v1/evaluations/${current.id}`);
    assert.equal(res.status, 200);
    const e = res.body;
    for (const field of [...EVALUATION_FIELDS, 'inputs', 'build_counts', 'errors', 'started_at', 'completed_at', 'duration_seconds', 'workflow_id']) {
      assert.ok(field in e, `missing ${field}`);
    }
    assert.equal(e.jobset_id, jobset.id);
    assert.equal(e.project_id, project.id);
    assert.equal(e.inputs_hash, 'sha256:abc');
    assert.equal(e.workflow_id, 'eval-x');
    assert.equal(e.duration_seconds, 12.5);
    assert.deepEqual(
      e.inputs.map((i: any) => [i.name, i.input_type, i.value, i.revision]),
      [['debug', 'boolean', 'false', null], ['src', 'git', 'file:///srv/repo', 'deadbeef']],
    );
    assert.deepEqual(e.errors, [{ job_name: 'tests.broken', error_message: 'attribute missing' }]);
    assert.equal(e.build_counts.total, 6);
    assert.equal(e.build_counts.succeeded, 2);
    assert.equal(e.build_counts.failed, 1);
    assert.equal(e.build_counts.timeout, 1);
    assert.equal(e.build_counts.pending, 1);
    assert.equal(e.build_counts.running, 1);
    assert.equal(e.build_counts.cancelled, 0);
    const prev = await stack.request('GET', `/api/v1/evaluations/${previous.id}`);
    assert.equal(prev.body.superseded_by, current.id);
    const failed = await stack.request('GET', `/api/v1/evaluations/${failedEval.id}`);
    assert.equal(failed.body.error_message, 'syntax error');
    assert.equal(failed.body.duration_seconds, null);
    assert.deepEqual(failed.body.inputs, []);
  });

  it('a hidden evaluation is listed and shown to admins only', async () => {
    const hidden = await seedEvaluation(stack.db, jobset.id, { hidden: true, created_at: new Date(Date.now() - 90 * 60_000) });
    const anonymous = await stack.request('GET', `/api/v1/evaluations?jobset_id=${jobset.id}`);
    assert.ok(!anonymous.body.items.some((e: any) => e.id === hidden.id));
    assert.equal(anonymous.body.total, 3);
    const admin = await stack.request('GET', `/api/v1/evaluations?jobset_id=${jobset.id}`, { key: stack.adminKey });
    assert.ok(admin.body.items.some((e: any) => e.id === hidden.id && e.hidden === true));
    assert.equal(admin.body.total, 4);
    assert.equal((await stack.request('GET', `/api/v1/evaluations/${hidden.id}`)).status, 404);
    assert.equal((await stack.request('GET', `/api/v1/evaluations/${hidden.id}`, { key: stack.adminKey })).status, 200);
    await stack.db('evaluations').where({ id: hidden.id }).delete();
  });

  it('unknown evaluations are 404, bad ids 400', async () => {
    const res = await stack.request('GET', `/api/v1/evaluations/${crypto.randomUUID()}`);
    assert.equal(res.status, 404);
    assert.equal(res.body.error_code, 'NOT_FOUND');
    const bad = await stack.request('GET', '/api/v1/evaluations/zzz');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.details[0].field, 'params.id');
  });

  it('compare: from {id} to ?to= lists new, removed and changed jobs, newly failing and fixed ones', async () => {
    const res = await stack.request('GET', `/api/v1/evaluations/${previous.id}/compare?to=${current.id}`);
    assert.equal(res.status, 200);
    const c = res.body;
    assert.equal(c.from_id, previous.id);
    assert.equal(c.to_id, current.id);
    assert.deepEqual(c.new_jobs.map((j: any) => j.job_name), ['added']);
    assert.equal(c.new_jobs[0].status, 'running');
    assert.deepEqual(c.removed_jobs.map((j: any) => j.job_name), ['gone']);
    assert.deepEqual(c.changed_jobs.map((j: any) => j.job_name), ['changed', 'fixme', 'regress']);
    const changed = c.changed_jobs[0];
    assert.notEqual(changed.old_drv, changed.new_drv);
    assert.equal(changed.old_status, 'succeeded');
    assert.equal(changed.new_status, 'pending');
    assert.deepEqual(c.newly_failing.map((j: any) => [j.job_name, j.old_status, j.new_status]), [['flaky', 'succeeded', 'timeout'], ['regress', 'succeeded', 'failed']]);
    assert.deepEqual(c.fixed.map((j: any) => [j.job_name, j.old_status, j.new_status]), [['fixme', 'failed', 'succeeded']]);
    assert.equal(c.unchanged_count, 2, 'same and flaky keep their derivation');

    const reverse = (await stack.request('GET', `/api/v1/evaluations/${current.id}/compare?to=${previous.id}`)).body;
    assert.deepEqual(reverse.new_jobs.map((j: any) => j.job_name), ['gone']);
    assert.deepEqual(reverse.removed_jobs.map((j: any) => j.job_name), ['added']);
    assert.deepEqual(reverse.fixed.map((j: any) => j.job_name), ['flaky', 'regress']);
    assert.deepEqual(reverse.newly_failing.map((j: any) => j.job_name), ['fixme']);
  });

  it('compare needs a valid ?to= (400 naming query.to) and known evaluations (404)', async () => {
    const missing = await stack.request('GET', `/api/v1/evaluations/${current.id}/compare`);
    assert.equal(missing.status, 400);
    assert.equal(missing.body.details[0].field, 'query.to');
    const invalid = await stack.request('GET', `/api/v1/evaluations/${current.id}/compare?to=yesterday`);
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.details[0].field, 'query.to');
    assert.equal((await stack.request('GET', `/api/v1/evaluations/${current.id}/compare?to=${crypto.randomUUID()}`)).status, 404);
    assert.equal((await stack.request('GET', `/api/v1/evaluations/${crypto.randomUUID()}/compare?to=${current.id}`)).status, 404);
  });
});
