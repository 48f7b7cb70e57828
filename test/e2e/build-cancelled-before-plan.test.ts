import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { seedBuild, seedEvaluation, seedJobset, seedProject } from '../support/seed';
import { buildWorkflowId } from '../../workflows/shared';

/**
 * A cancel that reaches a build before the build has its plan (its workflow's first task has not run
 * yet, as on a busy worker) is recorded: the row ends cancelled instead of staying pending for ever.
 * Found as a flaky lifecycle test: under load the cancel of the flake jobset's slow job came first.
 */
describe('a build cancelled before its workflow ran at all', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack({ worker: false });
  });
  after(async () => stack?.stop());

  it('ends cancelled, with completed_at, once a worker runs it', async () => {
    const project = await seedProject(stack.db);
    const jobset = await seedJobset(stack.db, project.id);
    const evaluation = await seedEvaluation(stack.db, jobset.id);
    const build = await seedBuild(stack.db, { evaluation, job_name: 'never-planned', status: 'pending' });
    await stack.temporal.workflows.startBuild({ projectName: project.name, jobsetName: jobset.name, jobName: build.job_name, system: build.system, buildId: build.id, evaluationId: evaluation.id });
    // No worker polls yet: the start and the cancel request are both in the history before any task runs.
    assert.equal(await stack.temporal.workflows.cancelBuild(build.id), true);
    await stack.startWorker();

    const result = await stack.temporal.client.workflow.getHandle(buildWorkflowId(build.id)).result();
    assert.deepEqual(result, { status: 'cancelled' });
    const row = await stack.db('builds').where({ id: build.id }).first();
    assert.equal(row.status, 'cancelled');
    assert.ok(row.completed_at, 'completed_at is set');
  });
});
