import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { inBatches } from '../../workflows/in-batches';

describe('inBatches', () => {
  it('sends every item once, never more than the batch size at a time, a batch after the one before', async () => {
    const sent: number[] = [];
    let pending = 0;
    let most = 0;
    await inBatches(Array.from({ length: 23 }, (_, i) => i), async (i) => {
      pending++;
      most = Math.max(most, pending);
      await new Promise((resolve) => setTimeout(resolve, 1));
      sent.push(i);
      pending--;
    }, 5);
    assert.deepEqual([...sent].sort((a, b) => a - b), Array.from({ length: 23 }, (_, i) => i));
    assert.equal(most, 5);
    // Batch k (items 5k…5k+4) finishes before batch k+1 starts.
    for (let k = 0; k < 4; k++) assert.ok(sent.slice(0, 5 * (k + 1)).every((i) => i < 5 * (k + 1)), `batch ${k} first`);
  });

  it('does nothing for no items', async () => {
    let calls = 0;
    await inBatches([], async () => { calls++; });
    assert.equal(calls, 0);
  });
});
