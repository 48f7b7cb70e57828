import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { fakeStorePath, seedEvaluationOfNewJobset, type Row } from '../support/seed';
import { insertEvaluatedBuilds, type EvaluatedBuild } from '../../activities/records/builds';
import { BUILD_WORKFLOW_ID_PREFIX } from '../../lib/workflow-ids';

/**
 * Issue 6: an evaluation records each batch of its jobs with one statement (the batch as one JSON
 * parameter): the builds, their workflow IDs, and the start rows of the new ones. A job recorded again
 * (a retried evaluation) keeps its row and its ID, takes the new derivation, and gets no second start row.
 */
describe('recording an evaluation\'s jobs (insertEvaluatedBuilds)', () => {
  let stack: TestStack;
  let evaluation: Row;
  const withProject = async (e: Row): Promise<Row> => ({ ...e, project_id: (await stack.db('jobsets').where({ id: e.jobset_id }).first('project_id')).project_id });

  before(async () => {
    stack = await startTestStack({ worker: false });
    evaluation = await withProject(await seedEvaluationOfNewJobset(stack.db));
  });
  after(async () => stack?.stop());

  const job = (name: string, fields: Partial<EvaluatedBuild> = {}): EvaluatedBuild => ({
    evaluation_id: evaluation.id,
    jobset_id: evaluation.jobset_id,
    project_id: evaluation.project_id,
    job_name: name,
    drv_path: fakeStorePath(`${name}.drv`),
    system: 'x86_64-linux',
    status: 'pending',
    priority: 100,
    is_aggregate: false,
    is_fod: false,
    meta_description: null,
    meta_license: null,
    meta_homepage: null,
    meta_maintainers: null,
    meta_timeout: null,
    meta_max_silent: null,
    required_features: [],
    ...fields,
  });

  it('writes every column as given, with its workflow ID and a start row, and answers each row as inserted', async () => {
    const full = job('tools.full', {
      priority: 250,
      is_fod: true,
      meta_description: 'quotes " and \\ and ünïcode, a tab\tand a newline\n',
      meta_license: 'MIT, GPL-3.0-only',
      meta_homepage: 'https://example.org/?a=1&b=2',
      meta_maintainers: 'alice@example.org',
      meta_timeout: 3600,
      meta_max_silent: 600,
      required_features: ['kvm', 'big-parallel', 'with space, and comma'],
    });
    const agg = job('release', { is_aggregate: true, system: 'aarch64-linux' });
    const answered = await insertEvaluatedBuilds(stack.db, [full, agg]);
    assert.deepEqual(answered.map((r) => [r.job_name, r.drv_path, r.system, r.is_aggregate, r.priority, r.inserted]), [
      ['tools.full', full.drv_path, 'x86_64-linux', false, 250, true],
      ['release', agg.drv_path, 'aarch64-linux', true, 100, true],
    ]);
    const row = await stack.db('builds').where({ id: answered[0].id }).first();
    assert.equal(row.workflow_id, `${BUILD_WORKFLOW_ID_PREFIX}${row.id}`);
    for (const key of ['evaluation_id', 'jobset_id', 'project_id', 'job_name', 'drv_path', 'system', 'status', 'priority', 'is_aggregate', 'is_fod',
      'meta_description', 'meta_license', 'meta_homepage', 'meta_maintainers', 'meta_timeout', 'meta_max_silent', 'required_features'] as const) {
      assert.deepEqual(row[key], full[key], key);
    }
    const starts = await stack.db('build_workflow_starts').whereIn('build_id', answered.map((r) => r.id)).orderBy('priority', 'desc');
    assert.deepEqual(starts.map((s) => [s.build_id, s.evaluation_id, s.is_aggregate, s.priority]), [
      [answered[0].id, evaluation.id, false, 250],
      [answered[1].id, evaluation.id, true, 100],
    ]);
    assert.deepEqual((await stack.db('builds').where({ id: answered[1].id }).first('required_features')).required_features, [], 'no features: an empty array, not null');
  });

  it('a job recorded again keeps its row and ID, takes the new derivation, is answered as not inserted and gets no second start row', async () => {
    const first = job('again');
    const [recorded] = await insertEvaluatedBuilds(stack.db, [first]);
    await stack.db('build_workflow_starts').where({ build_id: recorded.id }).delete(); // its workflow has started since
    const rebuilt = job('again', { drv_path: fakeStorePath('again-2.drv') });
    const fresh = job('fresh');
    const answered = await insertEvaluatedBuilds(stack.db, [rebuilt, fresh]);
    const again = answered.find((r) => r.job_name === 'again')!;
    assert.equal(again.id, recorded.id);
    assert.equal(again.inserted, false);
    assert.equal(again.drv_path, rebuilt.drv_path);
    assert.equal((await stack.db('builds').where({ id: recorded.id }).first('drv_path')).drv_path, rebuilt.drv_path);
    assert.equal(await stack.db('build_workflow_starts').where({ build_id: recorded.id }).first(), undefined, 'no start row for a build recorded before');
    assert.equal(answered.find((r) => r.job_name === 'fresh')!.inserted, true);
    assert.equal((await stack.db('builds').where({ evaluation_id: evaluation.id, job_name: 'again' })).length, 1);
  });

  it('an empty batch writes nothing, and a batch mixing evaluations is refused before anything is written', async () => {
    assert.deepEqual(await insertEvaluatedBuilds(stack.db, []), []);
    const other = await withProject(await seedEvaluationOfNewJobset(stack.db));
    const mixed = [job('mixed-a'), { ...job('mixed-b'), evaluation_id: other.id, jobset_id: other.jobset_id, project_id: other.project_id }];
    await assert.rejects(insertEvaluatedBuilds(stack.db, mixed), /one evaluation at a time/);
    assert.equal(await stack.db('builds').whereIn('job_name', ['mixed-a', 'mixed-b']).first(), undefined);
  });
});
