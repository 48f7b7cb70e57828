import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { fakeStorePath, seedBuild, seedEvaluationOfNewJobset, type Row } from '../support/seed';
import { forgetBatchExtraWaitedOn, markBatchExtraWaitedOn, markQueuedBatchExtrasWaitedOn, recordBatchExtras } from '../../activities/records/builds';

/**
 * Issue 6: a batch tells an extra's result only to a derivation workflow that waits for it. The rows of
 * `batch_extras` say which: a workflow whose plan finds the row marks it, as does one that queues the
 * derivation, and a batch marks the extras that workflows had queued before it chose them. The batch reads
 * the mark as it deletes the row, in one statement, so a plan that finds the row is always told.
 */
describe('batch extras: which derivation workflows wait for the batch', () => {
  let stack: TestStack;
  let evaluation: Row;

  before(async () => {
    stack = await startTestStack({ worker: false });
    evaluation = await seedEvaluationOfNewJobset(stack.db);
  });
  after(async () => stack?.stop());

  const waits = async (drvPath: string) => (await stack.db('batch_extras').where({ drv_path: drvPath }).first('workflow_waits'))?.workflow_waits as boolean | undefined;

  it('a plan that finds a running batch\'s extra marks it; without a row, or with a batch that stopped saying it is alive, it finds none', async () => {
    const [extra, other, stale] = ['extra', 'other', 'stale'].map((n) => fakeStorePath(`${n}-${Math.random()}.drv`));
    await recordBatchExtras(stack.db, 'batch-a', [extra, stale]);
    await stack.db('batch_extras').where({ drv_path: stale }).update({ alive_at: stack.db.raw("now() - interval '2 minutes'") });
    assert.equal(await waits(extra), false, 'a new row: no workflow waits yet');
    assert.equal(await markBatchExtraWaitedOn(stack.db, extra), true);
    assert.equal(await waits(extra), true);
    assert.equal(await markBatchExtraWaitedOn(stack.db, other), false, 'no batch realises it');
    assert.equal(await markBatchExtraWaitedOn(stack.db, stale), false, "a dead batch's row holds nothing");
    assert.equal(await waits(stale), false);
  });

  it('the batch marks the extras a workflow had queued (a step row in phase queued), and no other', async () => {
    const queued = await seedBuild(stack.db, { evaluation, status: 'pending' });
    const idle = await seedBuild(stack.db, { evaluation, status: 'pending' });
    const building = await seedBuild(stack.db, { evaluation, status: 'running' });
    await stack.db('build_steps').insert([
      { build_id: queued.id, step_number: 1, drv_path: queued.drv_path, status: 'pending', phase: 'queued' },
      { build_id: idle.id, step_number: 1, drv_path: idle.drv_path, status: 'pending', phase: null },
      { build_id: building.id, step_number: 1, drv_path: building.drv_path, status: 'running', phase: 'building' },
    ]);
    await recordBatchExtras(stack.db, 'batch-b', [queued.drv_path, idle.drv_path, building.drv_path]);
    await markQueuedBatchExtrasWaitedOn(stack.db, 'batch-b');
    assert.equal(await waits(queued.drv_path), true, 'queued by its workflow');
    assert.equal(await waits(idle.drv_path), false, 'no workflow queued it');
    assert.equal(await waits(building.drv_path), false);
  });

  it("the batch deletes an extra's row and learns in the same statement whether a workflow waits; a row another batch took over stays, with its mark", async () => {
    const [told, untold, takenOver] = ['told', 'untold', 'taken'].map((n) => fakeStorePath(`${n}-${Math.random()}.drv`));
    await recordBatchExtras(stack.db, 'batch-c', [told, untold, takenOver]);
    await markBatchExtraWaitedOn(stack.db, told);
    await markBatchExtraWaitedOn(stack.db, takenOver);
    assert.equal(await forgetBatchExtraWaitedOn(stack.db, 'batch-c', told), true);
    assert.equal(await forgetBatchExtraWaitedOn(stack.db, 'batch-c', untold), false);
    assert.equal(await stack.db('batch_extras').whereIn('drv_path', [told, untold]).first(), undefined, 'both rows are gone');
    // A later batch chose it too: the first batch's end leaves the row, and the later batch tells the workflow.
    await recordBatchExtras(stack.db, 'batch-d', [takenOver]);
    assert.equal(await forgetBatchExtraWaitedOn(stack.db, 'batch-c', takenOver), false);
    assert.equal(await waits(takenOver), true, 'the mark stays with the row');
    assert.equal(await forgetBatchExtraWaitedOn(stack.db, 'batch-d', takenOver), true);
  });

  it('a plan and the batch\'s end at the same moment: whenever the plan finds the row, the batch is told (40 rounds)', async () => {
    for (let round = 0; round < 40; round++) {
      const drv = fakeStorePath(`race-${round}-${Math.random()}.drv`);
      await recordBatchExtras(stack.db, 'batch-race', [drv]);
      // Two connections of the pool, racing.
      const [planFound, batchTold] = await Promise.all([markBatchExtraWaitedOn(stack.db, drv), forgetBatchExtraWaitedOn(stack.db, 'batch-race', drv)]);
      if (planFound) {
        assert.equal(batchTold, true, `round ${round}: the plan found the row, so the batch must tell its workflow`);
      } else {
        assert.equal(batchTold, false, `round ${round}: no plan marked it`);
      }
      assert.equal(await stack.db('batch_extras').where({ drv_path: drv }).first(), undefined);
    }
  });
});
