import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { fakeStorePath, seedBuild, seedEvaluationOfNewJobset, type Row } from '../support/seed';
import { insertPlannedSteps, logBuildOfStep, markStepsOfDerivation, recordSteps } from '../../activities/records/steps';

/**
 * A derivation shared by two builds is realised once, and its realisation marks the step rows of every
 * build waiting on it. A build planned while the shared derivation already builds gets step rows that
 * say so, instead of `pending` until the build ends (what `GET /builds/{id}/steps` shows).
 */
describe('step rows of a derivation that another build is already building', () => {
  let stack: TestStack;
  let evaluation: Row;
  const shared = fakeStorePath('shared.drv');
  const own = fakeStorePath('own.drv');

  before(async () => {
    stack = await startTestStack({ worker: false });
    evaluation = await seedEvaluationOfNewJobset(stack.db);
  });
  after(async () => stack?.stop());

  it('take the running state, phase, builder and start of the running rows, and their own derivations stay pending', async () => {
    const first = await seedBuild(stack.db, { evaluation, status: 'running' });
    const second = await seedBuild(stack.db, { evaluation, status: 'running' });
    await insertPlannedSteps(stack.db, first.id, [shared]);
    const startedAt = new Date(Date.UTC(2026, 10, 30, 7, 0, 0));
    await markStepsOfDerivation(stack.db, shared, { status: 'running', phase: 'connecting', builderId: null, startedAt });
    await markStepsOfDerivation(stack.db, shared, { phase: 'building' });

    await insertPlannedSteps(stack.db, second.id, [shared, own]);
    const rows = await stack.db('build_steps').where({ build_id: second.id }).orderBy('step_number');
    assert.deepEqual(
      rows.map((r) => [r.drv_path, r.status, r.phase]),
      [[shared, 'running', 'building'], [own, 'pending', null]],
    );
    assert.equal(new Date(rows[0].started_at).getTime(), startedAt.getTime());

    // The realisation's end reaches both builds' rows.
    await markStepsOfDerivation(stack.db, shared, { status: 'succeeded', phase: null, completedAt: new Date() });
    const statuses = await stack.db('build_steps').where({ drv_path: shared }).pluck('status');
    assert.deepEqual(statuses, ['succeeded', 'succeeded']);
  });

  it('a derivation whose other rows have finished is planned pending', async () => {
    const third = await seedBuild(stack.db, { evaluation, status: 'running' });
    await insertPlannedSteps(stack.db, third.id, [shared]);
    const row = await stack.db('build_steps').where({ build_id: third.id }).first();
    assert.equal(row.status, 'pending');
    assert.equal(row.phase, null);
  });
});

/**
 * Issue 6: a closure is planned once per derivation, not once per build. Each derivation to build gets
 * one step row, in the build that runs it (the build of that job, or the build whose derivation first
 * needed it), as Hydra records a shared step once.
 */
describe('step rows recorded where each derivation is run', () => {
  let stack: TestStack;
  let evaluation: Row;

  before(async () => {
    stack = await startTestStack({ worker: false });
    evaluation = await seedEvaluationOfNewJobset(stack.db);
  });
  after(async () => stack?.stop());

  it('a derivation recorded again in the same build keeps its one row; new rows follow the build\'s last step', async () => {
    const build = await seedBuild(stack.db, { evaluation, status: 'running' });
    const [a, b] = [fakeStorePath('a.drv'), fakeStorePath('b.drv')];
    await recordSteps(stack.db, [{ buildId: build.id, drvPath: build.drv_path }]);
    await recordSteps(stack.db, [{ buildId: build.id, drvPath: a }, { buildId: build.id, drvPath: build.drv_path }]);
    await recordSteps(stack.db, [{ buildId: build.id, drvPath: a }, { buildId: build.id, drvPath: b }]);
    const rows = await stack.db('build_steps').where({ build_id: build.id }).orderBy('step_number');
    assert.deepEqual(rows.map((r) => [r.step_number, r.drv_path]), [[1, build.drv_path], [2, a], [3, b]]);
  });

  it('planners recording into one build at once neither repeat a row nor take the same step number', async () => {
    const build = await seedBuild(stack.db, { evaluation, status: 'running' });
    const drvs = Array.from({ length: 12 }, (_, i) => fakeStorePath(`concurrent-${i}.drv`));
    // Each planner records its own input and a shared one.
    await Promise.all(drvs.map((d) => recordSteps(stack.db, [{ buildId: build.id, drvPath: d }, { buildId: build.id, drvPath: drvs[0] }])));
    const rows = await stack.db('build_steps').where({ build_id: build.id }).orderBy('step_number');
    assert.deepEqual(rows.map((r) => r.step_number), drvs.map((_, i) => i + 1));
    assert.deepEqual(new Set(rows.map((r) => r.drv_path)), new Set(drvs));
  });

  it('a new row of a derivation that another build is building takes its running state', async () => {
    const [runner, waiter] = [await seedBuild(stack.db, { evaluation, status: 'running' }), await seedBuild(stack.db, { evaluation, status: 'running' })];
    const shared = fakeStorePath('running-elsewhere.drv');
    await recordSteps(stack.db, [{ buildId: runner.id, drvPath: shared }]);
    await markStepsOfDerivation(stack.db, shared, { status: 'running', phase: 'building', builderId: null, startedAt: new Date() });
    await recordSteps(stack.db, [{ buildId: waiter.id, drvPath: shared }]);
    const row = await stack.db('build_steps').where({ build_id: waiter.id, drv_path: shared }).first();
    assert.deepEqual([row.status, row.phase], ['running', 'building']);
  });

  it('an input a batch built along before its planner recorded it gets its row, and its log, in the build of a member that needs it', async () => {
    const member = await seedBuild(stack.db, { evaluation, status: 'running' });
    const along = fakeStorePath('built-along.drv');
    assert.equal(await logBuildOfStep(stack.db, along, member.id), member.id);
    assert.equal((await stack.db('build_steps').where({ build_id: member.id, drv_path: along })).length, 1);
    // Recorded once: asked again, the same build answers from its row.
    assert.equal(await logBuildOfStep(stack.db, along), member.id);
  });

  it('an input built along that is a job itself gets its row, and its log, in its own build, whose start then keeps that row', async () => {
    const member = await seedBuild(stack.db, { evaluation, status: 'running' });
    const job = await seedBuild(stack.db, { evaluation, status: 'pending' });
    assert.equal(await logBuildOfStep(stack.db, job.drv_path, member.id), job.id);
    await recordSteps(stack.db, [{ buildId: job.id, drvPath: job.drv_path }]);
    assert.equal((await stack.db('build_steps').where({ drv_path: job.drv_path })).length, 1);
  });
});
