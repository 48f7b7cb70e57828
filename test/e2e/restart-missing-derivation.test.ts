import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { fakeStorePath, seedBuild, seedEvaluation, seedJobset, seedProject } from '../support/seed';
import { eventually } from '../support/pipeline';
import { buildWorkflowId } from '../../workflows/shared';

/**
 * A restart of a build whose .drv has left the store (garbage-collected since its evaluation, as happens
 * to old builds) cannot realise anything: the build ends aborted, saying why, instead of its planning
 * being retried for ever.
 */
describe('restarting a build whose derivation is no longer in the store', () => {
  let stack: TestStack;
  let buildId: string;
  let drvPath: string;

  before(async () => {
    stack = await startTestStack({ worker: true });
    const project = await seedProject(stack.db);
    const jobset = await seedJobset(stack.db, project.id);
    const evaluation = await seedEvaluation(stack.db, jobset.id);
    drvPath = fakeStorePath('gone.drv');
    buildId = (await seedBuild(stack.db, { evaluation, status: 'failed', drv_path: drvPath, completed_at: new Date() })).id;
  });
  after(async () => {
    await stack?.stop();
  });

  it('is accepted, then the build ends aborted with a message naming the missing derivation', async () => {
    const restart = await stack.request('POST', `/api/v1/builds/${buildId}/restart`, { key: stack.adminKey, body: {} });
    assert.equal(restart.status, 200, restart.text);
    const build = await eventually('the restarted build to finish', async () => {
      const res = await stack.request('GET', `/api/v1/builds/${buildId}`);
      return res.body.status === 'aborted' ? res.body : undefined;
    }, 60_000);
    assert.match(build.error_message, /is not in the Nix store/);
    assert.ok(build.error_message.includes(drvPath), build.error_message);
    assert.ok(build.completed_at, 'the build has finished');
  });

  it('its workflow completes (no activity left retrying)', async () => {
    const handle = stack.temporal.client.workflow.getHandle(buildWorkflowId(buildId));
    await eventually('the build workflow to close', async () => ((await handle.describe()).status.name === 'COMPLETED' ? true : undefined), 60_000);
  });
});
