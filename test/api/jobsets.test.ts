import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { startTestStack, type TestStack } from '../support/stack';
import { findJobset, findJobsetById, type JobsetRow } from '../../api/queries/jobsets';
import { jobsetScheduleId, syncJobsetSchedule, withJobsetSchedules } from '../../api/jobset-schedules';

const JOBSET_FIELDS = [
  'id', 'project_id', 'name', 'description', 'nix_expression', 'flake_mode', 'enabled', 'check_interval', 'trigger_mode', 'state',
  'branch', 'branch_pattern', 'tag_pattern', 'scheduling_shares', 'keep_nr', 'systems', 'only_build_latest', 'path_filters',
  'last_checked_at', 'created_at', 'updated_at', 'build_timeout', 'max_silent',
];
const INPUT_FIELDS = ['id', 'jobset_id', 'name', 'input_type', 'value', 'revision', 'created_at'];

describe('jobsets', () => {
  let stack: TestStack;
  let readOnly: string;
  let creator: string;
  let projectA: string;
  let projectB: string;

  const jobsetsOf = (projectId: string) => `/api/v1/projects/${projectId}/jobsets`;
  const create = (projectId: string, body: unknown, key = stack.adminKey) => stack.request('POST', jobsetsOf(projectId), { key, body });
  const describeSchedule = (jobsetId: string) => stack.temporal.client.schedule.getHandle(jobsetScheduleId(jobsetId)).describe();
  const assertNoSchedule = async (jobsetId: string) => {
    await assert.rejects(describeSchedule(jobsetId), (err: unknown) => err instanceof ScheduleNotFoundError);
  };
  const everySeconds = async (jobsetId: string) => {
    const d = await describeSchedule(jobsetId);
    return (d.spec.intervals ?? []).map((i) => i.every / 1000);
  };

  before(async () => {
    stack = await startTestStack({ worker: false });
    readOnly = await stack.keyFor('read-only');
    creator = await stack.keyFor('create-projects');
    const mk = async (name: string) =>
      (await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body: { name, repository_url: 'file:///srv/repo' } })).body.id as string;
    projectA = await mk('project-a');
    projectB = await mk('project-b');
  });
  after(async () => stack?.stop());

  describe('create', () => {
    it('an admin key creates a jobset with every circus field and the defaults', async () => {
      const res = await create(projectA, { name: 'main', nix_expression: 'release.nix' });
      assert.equal(res.status, 200);
      for (const field of JOBSET_FIELDS) assert.ok(field in res.body, `missing ${field}`);
      assert.equal(res.body.project_id, projectA);
      assert.equal(res.body.name, 'main');
      assert.equal(res.body.nix_expression, 'release.nix');
      assert.equal(res.body.flake_mode, false);
      assert.equal(res.body.enabled, true);
      assert.equal(res.body.check_interval, 0);
      assert.equal(res.body.trigger_mode, 'source_change');
      assert.equal(res.body.state, 'enabled');
      assert.equal(res.body.scheduling_shares, 100);
      assert.equal(res.body.keep_nr, 3);
      assert.equal(res.body.build_timeout, 36000);
      assert.equal(res.body.max_silent, 7200);
      assert.equal(res.body.last_checked_at, null);
      assert.equal(res.body.branch, null);
      assert.match(res.body.created_at, /^\d{4}-\d{2}-\d{2}T/);
      await assertNoSchedule(res.body.id);
    });

    it('a create-projects key may create a jobset with every optional field', async () => {
      const body = {
        name: 'flake-jobs',
        nix_expression: 'hydraJobs',
        flake_mode: true,
        enabled: true,
        check_interval: 0,
        trigger_mode: 'interval',
        branch: 'release/24.05',
        scheduling_shares: 5,
        state: 'one_at_a_time',
        only_build_latest: true,
        path_filters: ['src/**', 'flake.lock'],
        description: 'the flake jobs',
        keep_nr: 0,
        systems: ['x86_64-linux', 'aarch64-linux'],
        branch_pattern: '^release/.*$',
        tag_pattern: '^v[0-9]+',
        build_timeout: 600,
        max_silent: 60,
      };
      const res = await create(projectA, body, creator);
      assert.equal(res.status, 200);
      for (const [key, value] of Object.entries(body)) assert.deepEqual(res.body[key], value, key);
    });

    it('without a key the create is 401, and a read-only key gets 403; nothing is written', async () => {
      const anon = await stack.request('POST', jobsetsOf(projectA), { body: { name: 'anon', nix_expression: 'release.nix' } });
      assert.equal(anon.status, 401);
      assert.equal(anon.body.error_code, 'UNAUTHORIZED');
      const ro = await create(projectA, { name: 'ro', nix_expression: 'release.nix' }, readOnly);
      assert.equal(ro.status, 403);
      assert.equal(ro.body.error_code, 'FORBIDDEN');
      assert.equal(await stack.db('jobsets').whereIn('name', ['anon', 'ro']).first(), undefined);
    });

    it('invalid values are a 400 naming the field, and nothing is written', async () => {
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ name: 'x1' }, 'body.nix_expression'],
        [{ nix_expression: 'release.nix' }, 'body.name'],
        [{ name: 'x1', nix_expression: '' }, 'body.nix_expression'],
        [{ name: 'x1', nix_expression: '   ' }, 'body.nix_expression'],
        [{ name: 'x1', nix_expression: '/etc/release.nix' }, 'body.nix_expression'],
        [{ name: 'x1', nix_expression: '../other/release.nix' }, 'body.nix_expression'],
        [{ name: 'x1', nix_expression: 'ci/../../release.nix' }, 'body.nix_expression'],
        [{ name: 'x1', nix_expression: 'hydra Jobs', flake_mode: true }, 'body.nix_expression'],
        [{ name: 'x1', nix_expression: 'release.nix', check_interval: -1 }, 'body.check_interval'],
        [{ name: 'x1', nix_expression: 'release.nix', check_interval: 1.5 }, 'body.check_interval'],
        [{ name: 'x1', nix_expression: 'release.nix', scheduling_shares: 0 }, 'body.scheduling_shares'],
        [{ name: 'x1', nix_expression: 'release.nix', keep_nr: -1 }, 'body.keep_nr'],
        [{ name: 'x1', nix_expression: 'release.nix', trigger_mode: 'sometimes' }, 'body.trigger_mode'],
        [{ name: 'x1', nix_expression: 'release.nix', state: 'paused' }, 'body.state'],
        [{ name: 'x1', nix_expression: 'release.nix', systems: ['not a system'] }, 'body.systems.0'],
        [{ name: 'x1', nix_expression: 'release.nix', branch: 'a..b' }, 'body.branch'],
        [{ name: 'x1', nix_expression: 'release.nix', build_timeout: 0 }, 'body.build_timeout'],
        [{ name: 'x1', nix_expression: 'release.nix', max_silent: 'long' }, 'body.max_silent'],
        [{ name: 'bad name', nix_expression: 'release.nix' }, 'body.name'],
        [{ name: 'x1', nix_expression: 'release.nix', colour: 'red' }, 'body.colour'],
      ];
      for (const [body, field] of cases) {
        const res = await create(projectA, body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(res.body.error_code, 'VALIDATION_ERROR');
        assert.equal(res.body.details[0].field, field, JSON.stringify(body));
      }
      assert.equal(await stack.db('jobsets').where({ name: 'x1' }).first(), undefined);
    });

    it('the same name twice in a project is a 409, while another project may reuse it', async () => {
      const dup = await create(projectA, { name: 'main', nix_expression: 'default.nix' });
      assert.equal(dup.status, 409);
      assert.equal(dup.body.error_code, 'CONFLICT');
      const other = await create(projectB, { name: 'main', nix_expression: 'default.nix' });
      assert.equal(other.status, 200);
      assert.equal(other.body.project_id, projectB);
    });

    it('an unknown project is a 404', async () => {
      const res = await create('00000000-0000-4000-8000-000000000000', { name: 'main', nix_expression: 'release.nix' });
      assert.equal(res.status, 404);
      assert.equal(res.body.error_code, 'NOT_FOUND');
    });
  });

  describe('read', () => {
    it('the list is a page object of the project’s jobsets only', async () => {
      const page = await stack.request('GET', `${jobsetsOf(projectA)}?limit=1&offset=1`);
      assert.equal(page.status, 200);
      assert.equal(page.body.limit, 1);
      assert.equal(page.body.offset, 1);
      assert.equal(page.body.total, 2);
      assert.equal(page.body.items.length, 1);
      assert.equal(page.body.items[0].name, 'main');
      const all = await stack.request('GET', jobsetsOf(projectA));
      assert.deepEqual(all.body.items.map((j: JobsetRow) => j.name), ['flake-jobs', 'main']);
      assert.ok(all.body.items.every((j: JobsetRow) => j.project_id === projectA));
      assert.equal(all.body.limit, 50);
    });

    it('listing the jobsets of an unknown project is a 404, and a bad limit a 400', async () => {
      assert.equal((await stack.request('GET', jobsetsOf('00000000-0000-4000-8000-000000000000'))).status, 404);
      const bad = await stack.request('GET', `${jobsetsOf(projectA)}?limit=0`);
      assert.equal(bad.status, 400);
      assert.equal(bad.body.details[0].field, 'query.limit');
    });

    it('a jobset is found under its project and not under another project’s path', async () => {
      const main = (await stack.request('GET', jobsetsOf(projectA))).body.items.find((j: JobsetRow) => j.name === 'main');
      const got = await stack.request('GET', `${jobsetsOf(projectA)}/${main.id}`);
      assert.equal(got.status, 200);
      assert.equal(got.body.id, main.id);
      const wrongProject = await stack.request('GET', `${jobsetsOf(projectB)}/${main.id}`);
      assert.equal(wrongProject.status, 404);
      assert.equal((await stack.request('GET', `${jobsetsOf(projectA)}/00000000-0000-4000-8000-000000000000`)).status, 404);
      const badId = await stack.request('GET', `${jobsetsOf(projectA)}/nope`);
      assert.equal(badId.status, 400);
      assert.equal(badId.body.details[0].field, 'params.id');
      assert.equal((await findJobset(stack.db, projectA, main.id))?.name, 'main');
      assert.equal(await findJobset(stack.db, projectB, main.id), undefined);
      assert.equal((await findJobsetById(stack.db, main.id))?.project_id, projectA);
    });
  });

  describe('update and delete', () => {
    let jobset: JobsetRow;
    before(async () => {
      jobset = (await create(projectA, { name: 'to-change', nix_expression: 'release.nix' })).body;
    });

    it('an admin updates fields, and updated_at moves', async () => {
      const res = await stack.request('PUT', `${jobsetsOf(projectA)}/${jobset.id}`, {
        key: stack.adminKey,
        body: { description: 'changed', keep_nr: 10, systems: ['x86_64-linux'], branch: 'main' },
      });
      assert.equal(res.status, 200);
      assert.equal(res.body.description, 'changed');
      assert.equal(res.body.keep_nr, 10);
      assert.deepEqual(res.body.systems, ['x86_64-linux']);
      assert.equal(res.body.branch, 'main');
      assert.equal(res.body.nix_expression, 'release.nix');
      assert.ok(new Date(res.body.updated_at) >= new Date(jobset.updated_at));
    });

    it('updates need the admin role: 401 without a key, 403 for read-only and create-projects keys', async () => {
      const path = `${jobsetsOf(projectA)}/${jobset.id}`;
      assert.equal((await stack.request('PUT', path, { body: { description: 'x' } })).status, 401);
      assert.equal((await stack.request('PUT', path, { key: readOnly, body: { description: 'x' } })).status, 403);
      assert.equal((await stack.request('PUT', path, { key: creator, body: { description: 'x' } })).status, 403);
      assert.equal((await stack.request('DELETE', path, { key: creator })).status, 403);
      assert.equal((await stack.request('DELETE', path)).status, 401);
      assert.equal((await stack.request('GET', path)).body.description, 'changed');
    });

    it('an invalid update is a 400 naming the field and changes nothing', async () => {
      const path = `${jobsetsOf(projectA)}/${jobset.id}`;
      const abs = await stack.request('PUT', path, { key: stack.adminKey, body: { nix_expression: '/abs/release.nix', description: 'not this' } });
      assert.equal(abs.status, 400);
      assert.equal(abs.body.details[0].field, 'body.nix_expression');
      const shares = await stack.request('PUT', path, { key: stack.adminKey, body: { scheduling_shares: 0 } });
      assert.equal(shares.body.details[0].field, 'body.scheduling_shares');
      const empty = await stack.request('PUT', path, { key: stack.adminKey, body: {} });
      assert.equal(empty.status, 400);
      assert.equal((await stack.request('GET', path)).body.description, 'changed');
    });

    it('switching to legacy mode re-checks the stored flake attribute', async () => {
      const flake = (await create(projectA, { name: 'flake-switch', nix_expression: 'hydraJobs', flake_mode: true })).body;
      const ok = await stack.request('PUT', `${jobsetsOf(projectA)}/${flake.id}`, { key: stack.adminKey, body: { flake_mode: false, nix_expression: 'release.nix' } });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.flake_mode, false);
      const abs = (await create(projectA, { name: 'flake-abs', nix_expression: '/nix/store/x.drv/hydraJobs', flake_mode: true })).body;
      assert.equal(abs.flake_mode, true);
      const refused = await stack.request('PUT', `${jobsetsOf(projectA)}/${abs.id}`, { key: stack.adminKey, body: { flake_mode: false } });
      assert.equal(refused.status, 400);
      assert.equal(refused.body.details[0].field, 'body.flake_mode');
    });

    it('renaming onto an existing name is a 409; unknown and foreign ids are 404', async () => {
      const dup = await stack.request('PUT', `${jobsetsOf(projectA)}/${jobset.id}`, { key: stack.adminKey, body: { name: 'main' } });
      assert.equal(dup.status, 409);
      const foreign = await stack.request('PUT', `${jobsetsOf(projectB)}/${jobset.id}`, { key: stack.adminKey, body: { description: 'hijack' } });
      assert.equal(foreign.status, 404);
      const unknown = await stack.request('PUT', `${jobsetsOf(projectA)}/00000000-0000-4000-8000-000000000000`, { key: stack.adminKey, body: { description: 'x' } });
      assert.equal(unknown.status, 404);
      assert.equal((await stack.request('DELETE', `${jobsetsOf(projectB)}/${jobset.id}`, { key: stack.adminKey })).status, 404);
      assert.equal((await stack.request('GET', `${jobsetsOf(projectA)}/${jobset.id}`)).body.name, 'to-change');
    });

    it('an admin deletes a jobset: 204 with no body, then 404', async () => {
      const path = `${jobsetsOf(projectA)}/${jobset.id}`;
      const del = await stack.request('DELETE', path, { key: stack.adminKey });
      assert.equal(del.status, 204);
      assert.equal(del.text, '');
      assert.equal((await stack.request('GET', path)).status, 404);
      assert.equal((await stack.request('DELETE', path, { key: stack.adminKey })).status, 404);
    });

    it('mutations leave audit rows naming the jobset', async () => {
      const rows = await stack.db('audit_log').where({ target_kind: 'jobset', target_id: jobset.id });
      assert.deepEqual(rows.map((r) => r.action).sort(), [
        'DELETE /api/v1/projects/{project_id}/jobsets/{id}',
        'POST /api/v1/projects/{id}/jobsets',
        'PUT /api/v1/projects/{project_id}/jobsets/{id}',
      ]);
    });
  });

  describe('inputs', () => {
    let jobset: JobsetRow;
    let inputsPath: string;
    before(async () => {
      jobset = (await create(projectA, { name: 'with-inputs', nix_expression: 'release.nix' })).body;
      inputsPath = `${jobsetsOf(projectA)}/${jobset.id}/inputs`;
    });
    const addInput = (body: unknown, key = stack.adminKey) => stack.request('POST', inputsPath, { key, body });

    it('an admin adds inputs of every type, and the list is a bare array', async () => {
      const inputs = [
        { name: 'src', input_type: 'git', value: 'https://example.org/repo.git', revision: 'main' },
        { name: 'nixpkgs', input_type: 'git', value: 'file:///srv/nixpkgs', revision: '0123456789abcdef0123456789abcdef01234567' },
        { name: 'greeting', input_type: 'string', value: 'hello world' },
        { name: 'doCheck', input_type: 'boolean', value: 'true' },
        { name: 'upstream', input_type: 'build', value: 'project-a:main:hello' },
        { name: 'localTree', input_type: 'path', value: '/srv/tree' },
        { name: 'config', input_type: 'nix', value: '{ a = 1; b = [ "x" ]; }' },
      ];
      for (const input of inputs) {
        const res = await addInput(input);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        for (const field of INPUT_FIELDS) assert.ok(field in res.body, `missing ${field}`);
        assert.equal(res.body.jobset_id, jobset.id);
        assert.equal(res.body.revision, 'revision' in input ? input.revision : null);
      }
      const list = await stack.request('GET', inputsPath);
      assert.equal(list.status, 200);
      assert.ok(Array.isArray(list.body));
      assert.deepEqual(list.body.map((i: { name: string }) => i.name).sort(), inputs.map((i) => i.name).sort());
    });

    it('invalid inputs are a 400 naming the field', async () => {
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ name: 'flag', input_type: 'boolean', value: 'yes' }, 'body.value'],
        [{ name: '1st', input_type: 'string', value: 'x' }, 'body.name'],
        [{ name: 'let', input_type: 'string', value: 'x' }, 'body.name'],
        [{ name: 'has space', input_type: 'string', value: 'x' }, 'body.name'],
        [{ name: 'x', input_type: 'svn', value: 'x' }, 'body.input_type'],
        [{ name: 'x', input_type: 'git', value: 'not a url' }, 'body.value'],
        [{ name: 'x', input_type: 'git', value: 'https://example.org/r.git', revision: 'bad..ref' }, 'body.revision'],
        [{ name: 'x', input_type: 'string', value: 'x', revision: 'main' }, 'body.revision'],
        [{ name: 'x', input_type: 'nix', value: '{ a = ; }' }, 'body.value'],
        [{ name: 'x', input_type: 'build', value: 'just-a-name' }, 'body.value'],
        [{ name: 'x', input_type: 'path', value: 'relative/path' }, 'body.value'],
        [{ name: 'x', input_type: 'string' }, 'body.value'],
      ];
      for (const [body, field] of cases) {
        const res = await addInput(body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(res.body.error_code, 'VALIDATION_ERROR');
        assert.equal(res.body.details[0].field, field, JSON.stringify(body));
      }
      assert.equal(await stack.db('jobset_inputs').where({ name: 'x' }).first(), undefined);
    });

    it('a duplicate input name is a 409', async () => {
      const res = await addInput({ name: 'greeting', input_type: 'string', value: 'again' });
      assert.equal(res.status, 409);
      assert.equal(res.body.error_code, 'CONFLICT');
    });

    it('inputs need the admin role: 401 without a key, 403 for read-only and create-projects keys', async () => {
      const body = { name: 'denied', input_type: 'string', value: 'x' };
      assert.equal((await stack.request('POST', inputsPath, { body })).status, 401);
      assert.equal((await addInput(body, readOnly)).status, 403);
      assert.equal((await addInput(body, creator)).status, 403);
      assert.equal(await stack.db('jobset_inputs').where({ name: 'denied' }).first(), undefined);
    });

    it('inputs of an unknown jobset, or through another project’s path, are 404', async () => {
      const foreign = `${jobsetsOf(projectB)}/${jobset.id}/inputs`;
      assert.equal((await stack.request('GET', foreign)).status, 404);
      assert.equal((await stack.request('POST', foreign, { key: stack.adminKey, body: { name: 'y', input_type: 'string', value: 'x' } })).status, 404);
      const unknown = `${jobsetsOf(projectA)}/00000000-0000-4000-8000-000000000000/inputs`;
      assert.equal((await stack.request('GET', unknown)).status, 404);
      assert.equal((await stack.request('POST', unknown, { key: stack.adminKey, body: { name: 'y', input_type: 'string', value: 'x' } })).status, 404);
    });

    it('an admin deletes an input: 204, then 404; a foreign path or a read-only key cannot', async () => {
      const list = (await stack.request('GET', inputsPath)).body as Array<{ id: string; name: string }>;
      const greeting = list.find((i) => i.name === 'greeting')!;
      assert.equal((await stack.request('DELETE', `${inputsPath}/${greeting.id}`, { key: readOnly })).status, 403);
      assert.equal((await stack.request('DELETE', `${jobsetsOf(projectB)}/${jobset.id}/inputs/${greeting.id}`, { key: stack.adminKey })).status, 404);
      const del = await stack.request('DELETE', `${inputsPath}/${greeting.id}`, { key: stack.adminKey });
      assert.equal(del.status, 204);
      assert.equal(del.text, '');
      assert.equal((await stack.request('DELETE', `${inputsPath}/${greeting.id}`, { key: stack.adminKey })).status, 404);
      const after = (await stack.request('GET', inputsPath)).body as Array<{ name: string }>;
      assert.ok(!after.some((i) => i.name === 'greeting'));
      assert.equal(after.length, list.length - 1);
    });
  });

  describe('check-interval schedules', () => {
    it('a jobset with a check interval gets a Temporal Schedule that starts CheckJobsetWorkflow (which starts EvaluationWorkflow when the inputs changed)', async () => {
      const res = await create(projectA, { name: 'scheduled', nix_expression: 'release.nix', check_interval: 3600 });
      assert.equal(res.status, 200);
      const d = await describeSchedule(res.body.id);
      assert.deepEqual(await everySeconds(res.body.id), [3600]);
      assert.equal(d.action.type, 'startWorkflow');
      assert.equal(d.action.workflowType, 'CheckJobsetWorkflow');
      assert.equal(d.action.taskQueue, stack.taskQueue);
      assert.equal(d.action.workflowId, `eval-sched-${res.body.id}`);
      assert.deepEqual(d.action.args, [{ jobsetId: res.body.id, trigger: 'interval' }]);
      assert.equal(d.policies.overlap, ScheduleOverlapPolicy.SKIP);
      assert.equal(d.state.paused, false);
    });

    it('updating the interval updates the schedule; disabling, switching off or a zero interval removes it; re-enabling restores it', async () => {
      const j = (await create(projectA, { name: 'resched', nix_expression: 'release.nix', check_interval: 600 })).body;
      const path = `${jobsetsOf(projectA)}/${j.id}`;
      const put = (body: unknown) => stack.request('PUT', path, { key: stack.adminKey, body });
      assert.deepEqual(await everySeconds(j.id), [600]);
      assert.equal((await put({ check_interval: 120 })).status, 200);
      assert.deepEqual(await everySeconds(j.id), [120]);
      assert.equal((await put({ state: 'disabled' })).status, 200);
      await assertNoSchedule(j.id);
      assert.equal((await put({ state: 'one_at_a_time' })).status, 200);
      assert.deepEqual(await everySeconds(j.id), [120]);
      assert.equal((await put({ enabled: false })).status, 200);
      await assertNoSchedule(j.id);
      assert.equal((await put({ enabled: true, check_interval: 0 })).status, 200);
      await assertNoSchedule(j.id);
      assert.equal((await put({ check_interval: 30 })).status, 200);
      assert.deepEqual(await everySeconds(j.id), [30]);
      const refused = await put({ check_interval: 45, scheduling_shares: 0 });
      assert.equal(refused.status, 400);
      assert.deepEqual(await everySeconds(j.id), [30]);
    });

    it('a jobset created disabled has no schedule', async () => {
      const j = (await create(projectA, { name: 'born-disabled', nix_expression: 'release.nix', check_interval: 60, state: 'disabled' })).body;
      await assertNoSchedule(j.id);
    });

    it('deleting the jobset deletes its schedule', async () => {
      const j = (await create(projectA, { name: 'short-lived', nix_expression: 'release.nix', check_interval: 300 })).body;
      assert.deepEqual(await everySeconds(j.id), [300]);
      assert.equal((await stack.request('DELETE', `${jobsetsOf(projectA)}/${j.id}`, { key: stack.adminKey })).status, 204);
      await assertNoSchedule(j.id);
    });

    it('deleting the project deletes the schedules of all its jobsets', async () => {
      const project = (await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body: { name: 'doomed', repository_url: 'file:///srv/doomed' } })).body;
      const one = (await create(project.id, { name: 'one', nix_expression: 'release.nix', check_interval: 900 })).body;
      const two = (await create(project.id, { name: 'two', nix_expression: 'hydraJobs', flake_mode: true, check_interval: 1800 })).body;
      const off = (await create(project.id, { name: 'off', nix_expression: 'release.nix' })).body;
      assert.deepEqual(await everySeconds(one.id), [900]);
      assert.deepEqual(await everySeconds(two.id), [1800]);
      assert.equal((await stack.request('DELETE', `/api/v1/projects/${project.id}`, { key: stack.adminKey })).status, 204);
      await assertNoSchedule(one.id);
      await assertNoSchedule(two.id);
      await assertNoSchedule(off.id);
      assert.equal(await findJobsetById(stack.db, one.id), undefined);
    });

    it('a failed write puts the schedules back as they were', async () => {
      const j = (await create(projectA, { name: 'rollback', nix_expression: 'release.nix', check_interval: 700 })).body as JobsetRow;
      const fresh: JobsetRow = { ...j, id: '11111111-1111-4111-8111-111111111111', name: 'never-committed' };
      await assert.rejects(
        withJobsetSchedules(stack.db, stack.temporal, async (trx, schedules) => {
          const previous = await findJobset(trx, projectA, j.id, { forUpdate: true });
          const [updated] = await trx('jobsets').where({ id: j.id }).update({ check_interval: 5 }).returning('*');
          await schedules.sync(updated as JobsetRow, previous);
          await schedules.sync(fresh, undefined);
          assert.deepEqual(await everySeconds(j.id), [5]);
          assert.deepEqual(await everySeconds(fresh.id), [700]);
          throw new Error('the commit fails');
        }),
        /the commit fails/,
      );
      assert.deepEqual(await everySeconds(j.id), [700]);
      await assertNoSchedule(fresh.id);
      assert.equal((await findJobsetById(stack.db, j.id))?.check_interval, 700);
    });

    it('syncing a jobset without Temporal configured does nothing', async () => {
      const j = (await create(projectA, { name: 'no-temporal', nix_expression: 'release.nix' })).body as JobsetRow;
      await syncJobsetSchedule(undefined, { ...j, check_interval: 60 });
      await assertNoSchedule(j.id);
    });
  });
});
