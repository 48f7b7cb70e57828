import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { fakeStorePath, seedBuild, seedEvaluationOfNewJobset, type Row } from '../support/seed';
import { dropServedBuildOutputs, mustWakeOutputsServer, queueBuildOutputsToServe, queuedBuildOutputs } from '../../activities/records/outputs-to-serve';

/**
 * Succeeded builds queue their outputs to be served (closure size, GC roots, binary cache) by one
 * ServeBuildOutputsWorkflow per task queue (issue 6). A finishing build wakes it only when it finds the
 * queue empty: the server drains the queue and stops only on an empty read, so no build is left behind
 * and a burst of builds costs one signal, not one each.
 */
describe('the queue of build outputs to serve', () => {
  let stack: TestStack;
  let evaluation: Row;
  const succeeded = async (name: string) => {
    const build = await seedBuild(stack.db, { evaluation, status: 'succeeded' });
    const out = fakeStorePath(name);
    await stack.db('build_outputs').insert({ build_id: build.id, name: 'out', path: out });
    return { id: build.id as string, out };
  };

  before(async () => {
    stack = await startTestStack({ worker: false });
    evaluation = await seedEvaluationOfNewJobset(stack.db);
  });
  after(async () => stack?.stop());

  it('the build that finds the queue empty wakes the server; builds queued behind it do not; after the server drained it, the next one does', async () => {
    const [first, second, third] = [await succeeded('first'), await succeeded('second'), await succeeded('third')];
    await queueBuildOutputsToServe(stack.db, first.id);
    assert.equal(await mustWakeOutputsServer(stack.db, first.id), true);
    await queueBuildOutputsToServe(stack.db, second.id);
    assert.equal(await mustWakeOutputsServer(stack.db, second.id), false);

    const round = await queuedBuildOutputs(stack.db, 200);
    assert.deepEqual(round.map((b) => [b.buildId, b.outputs]), [[first.id, [first.out]], [second.id, [second.out]]]);
    await dropServedBuildOutputs(stack.db, round.map((b) => b.buildId));

    await queueBuildOutputsToServe(stack.db, third.id);
    assert.equal(await mustWakeOutputsServer(stack.db, third.id), true);
    // Queued again (a finish recorded again): still one row.
    await queueBuildOutputsToServe(stack.db, third.id);
    assert.equal((await queuedBuildOutputs(stack.db, 200)).length, 1);
    await dropServedBuildOutputs(stack.db, [third.id]);
  });

  it('a queue whose first build has waited over 10 minutes wakes the server again (one that is gone is started anew)', async () => {
    const [stuck, next] = [await succeeded('stuck'), await succeeded('next')];
    await stack.db('build_outputs_to_serve').insert({ build_id: stuck.id, queued_at: new Date(Date.now() - 11 * 60_000) });
    await queueBuildOutputsToServe(stack.db, next.id);
    assert.equal(await mustWakeOutputsServer(stack.db, next.id), true);
    await dropServedBuildOutputs(stack.db, [stuck.id, next.id]);
  });
});
