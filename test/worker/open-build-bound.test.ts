import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { seedBuild, seedEvaluationOfNewJobset, type Row } from '../support/seed';
import { OpenBuildBound } from '../../activities/open-build-bound';

/**
 * RINGMASTER_MAX_OPEN_BUILDS (issue 6), against a real PostgreSQL: a build is open when its row is
 * unfinished and it has no start row (`build_workflow_starts`) left.
 */
describe('OpenBuildBound: places for build workflows under the bound', () => {
  let stack: TestStack;
  let evaluation: Row;
  const open = async () => seedBuild(stack.db, { evaluation, status: 'running' });
  const waiting = async () => {
    const build = await seedBuild(stack.db, { evaluation, status: 'pending' });
    await stack.db('build_workflow_starts').insert({ build_id: build.id, evaluation_id: evaluation.id });
    return build;
  };
  const finish = (build: Row) => stack.db('builds').where({ id: build.id }).update({ status: 'succeeded', completed_at: stack.db.fn.now() });

  before(async () => {
    stack = await startTestStack({ worker: false });
  });
  after(async () => stack?.stop());
  const clean = async () => {
    await stack.db('build_workflow_starts').delete();
    await stack.db('builds').update({ status: 'succeeded' });
    evaluation = await seedEvaluationOfNewJobset(stack.db);
  };

  it('takes at most the room counted (builds with a start row are not open), then none until the next count', async () => {
    await clean();
    const bound = new OpenBuildBound(stack.db, 4);
    const running = await open();
    await waiting();
    await waiting();
    assert.equal(await bound.room(), 3);
    assert.equal(await bound.claim(2), 2);
    assert.equal(await bound.claim(5), 1, 'what is left of the count');
    assert.equal(await bound.claim(1), 0);
    await finish(running);
    assert.equal(await bound.claim(1), 0, 'a build that finished is seen by the next count, not before');
    await bound.waitForRoom(() => undefined);
    assert.equal(await bound.claim(9), 4, 'waitForRoom counted again');
  });

  it('concurrent claims share one count and never take more than its room; builds the caller started but the count cannot see are subtracted', async () => {
    await clean();
    await open();
    const bound = new OpenBuildBound(stack.db, 6);
    const claims = await Promise.all(Array.from({ length: 10 }, () => bound.claim(1, () => 2)));
    assert.equal(claims.reduce((a, b) => a + b, 0), 3, `6 - 1 open - 2 uncounted; claims ${claims.join(' ')}`);
  });

  it('without a bound, every place asked for is taken', async () => {
    await clean();
    for (let i = 0; i < 3; i++) await open();
    const bound = new OpenBuildBound(stack.db, 0);
    assert.equal(await bound.claim(1000), 1000);
    assert.equal(await bound.room(), Infinity);
  });

  it('counts again once its count is a second old, even with places left', async () => {
    await clean();
    const running = await open();
    const bound = new OpenBuildBound(stack.db, 3);
    assert.equal(await bound.claim(1), 1);
    await finish(running);
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    assert.equal(await bound.claim(9), 3, 'the finished build made room (the place taken before started nothing here)');
  });
});
