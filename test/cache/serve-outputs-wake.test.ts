import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { fakeStorePath, seedBuild, seedEvaluationOfNewJobset } from '../support/seed';
import { queueBuildOutputsToServe, queuedBuildOutputs } from '../../activities/records/outputs-to-serve';

/**
 * ServeBuildOutputsWorkflow continues as new with whether it was due to serve (a wake signal taken, or a
 * failed publication's retry due): the new run serves at once, where it would otherwise wait for a wake
 * that was already spent, leaving the queue behind until a build found it stale.
 */
describe('a ServeBuildOutputsWorkflow run that continues a woken one', () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack();
  });
  after(async () => stack?.stop());

  it('serves the queue at its start, without a signal', async () => {
    const evaluation = await seedEvaluationOfNewJobset(stack.db);
    const build = await seedBuild(stack.db, { evaluation, status: 'succeeded' });
    await stack.db('build_outputs').insert({ build_id: build.id, name: 'out', path: fakeStorePath('woken') });
    await queueBuildOutputsToServe(stack.db, build.id);

    const handle = await stack.temporal.client.workflow.start('ServeBuildOutputsWorkflow', {
      workflowId: `serve-outputs-continued-${build.id}`,
      taskQueue: stack.taskQueue,
      args: [true],
    });
    try {
      const served = (e: { activityTaskCompletedEventAttributes?: unknown }) => Boolean(e.activityTaskCompletedEventAttributes);
      const deadline = Date.now() + 60_000;
      let events = (await handle.fetchHistory()).events ?? [];
      while (!events.some(served)) {
        assert.ok(Date.now() < deadline, 'the queue was not served within 60 s');
        await new Promise((resolve) => setTimeout(resolve, 200));
        events = (await handle.fetchHistory()).events ?? [];
      }
      assert.equal(events.filter((e) => e.workflowExecutionSignaledEventAttributes).length, 0, 'no wake signal was sent');
      assert.ok(events.some((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'serveQueuedBuildOutputsActivity'));
      // The round took the queued build (its made-up output cannot be published: it stays queued, counted once, for a retry).
      const [left] = await stack.db('build_outputs_to_serve').where({ build_id: build.id }).select('attempts');
      assert.ok(left === undefined || left.attempts === 1, `the round took the queued build (attempts ${left?.attempts})`);
    } finally {
      await handle.terminate('test done');
    }
  });
});
