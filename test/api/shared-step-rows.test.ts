import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { fakeStorePath, seedBuild, seedEvaluation, seedJobset, seedProject, type Row } from '../support/seed';
import { insertPlannedSteps, markStepsOfDerivation } from '../../activities/records/steps';

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
    const project = await seedProject(stack.db);
    const jobset = await seedJobset(stack.db, project.id);
    evaluation = await seedEvaluation(stack.db, jobset.id);
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
