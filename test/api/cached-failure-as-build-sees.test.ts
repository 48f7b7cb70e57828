import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { fakeStorePath, seedBuild, seedEvaluationOfNewJobset, type Row } from '../support/seed';
import { findCachedFailureFor, recordCachedFailure, resultAsBuildSees } from '../../activities/records/cached-failures';

/**
 * A derivation's failure is the own failure (`failed`) of every build created before it was decided:
 * those builds waited for it, however late they heard of it (a build that attaches while the
 * derivation's workflow tells its waiters, or after it closed, hears `cached_failure`). A build created
 * after the failure was decided gets `cached_failure`, as in Hydra.
 */
describe('a cached failure as a build sees it', () => {
  let stack: TestStack;
  let evaluation: Row;

  before(async () => {
    stack = await startTestStack({ worker: false });
    evaluation = await seedEvaluationOfNewJobset(stack.db);
  });
  after(async () => stack?.stop());

  it('is the build’s own failure when decided after the build was created, and a cached failure for a later build', async () => {
    const drv = fakeStorePath('broken.drv');
    const waiting = await seedBuild(stack.db, { evaluation, status: 'running', drv_path: drv });
    await recordCachedFailure(stack.db, { drvPath: drv, status: 'failed', errorMessage: 'builder exited with 1' });
    const later = await seedBuild(stack.db, { evaluation, status: 'running', drv_path: drv });

    const heard = { status: 'cached_failure', errorMessage: 'cached failure (failed): builder exited with 1' };
    assert.deepEqual(await resultAsBuildSees(stack.db, waiting.id, drv, heard), { status: 'failed', errorMessage: 'builder exited with 1' });
    assert.deepEqual(await resultAsBuildSees(stack.db, later.id, drv, heard), heard);
  });

  it('a derivation failing again is a new decision: the builds created before it fail with it', async () => {
    const drv = fakeStorePath('flaky.drv');
    await recordCachedFailure(stack.db, { drvPath: drv, status: 'failed', errorMessage: 'first' });
    const build = await seedBuild(stack.db, { evaluation, status: 'running', drv_path: drv });
    assert.equal((await findCachedFailureFor(stack.db, drv, build.id))?.decidedAfterBuild, false);
    await recordCachedFailure(stack.db, { drvPath: drv, status: 'timeout', errorMessage: 'second' });
    const seen = await resultAsBuildSees(stack.db, build.id, drv, { status: 'cached_failure', errorMessage: 'cached failure (timeout): second' });
    assert.deepEqual(seen, { status: 'timeout', errorMessage: 'second' });
  });

  it('leaves other results, and a build with no top derivation, as they are', async () => {
    const drv = fakeStorePath('other.drv');
    const build = await seedBuild(stack.db, { evaluation, status: 'running', drv_path: drv });
    await recordCachedFailure(stack.db, { drvPath: drv, status: 'failed', errorMessage: 'x' });
    const dependencyFailed = { status: 'dependency_failed', errorMessage: 'dependency y failed' };
    assert.deepEqual(await resultAsBuildSees(stack.db, build.id, drv, dependencyFailed), dependencyFailed);
    const cached = { status: 'cached_failure', errorMessage: 'cached failure (failed): x' };
    assert.deepEqual(await resultAsBuildSees(stack.db, build.id, null, cached), cached);
    // A derivation with no cached failure row (restarted since): unchanged.
    assert.deepEqual(await resultAsBuildSees(stack.db, build.id, fakeStorePath('none.drv'), cached), cached);
  });
});
