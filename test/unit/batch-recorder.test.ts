import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BatchRecorder } from '../../activities/batch-recorder';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('batches written behind the evaluator', () => {
  it('writes every item once, in order, one batch at a time, each batch between the bounds but the last', async () => {
    const batches: number[][] = [];
    let writing = 0;
    const recorder = new BatchRecorder<number>({ minBatch: 10, maxBatch: 25, maxPending: 50, lingerMs: 60_000 }, async (batch) => {
      writing++;
      assert.equal(writing, 1, 'one write at a time');
      await tick();
      await tick();
      batches.push(batch);
      writing--;
    });
    for (let i = 0; i < 203; i++) await recorder.add(i);
    await recorder.end();
    assert.deepEqual(batches.flat(), Array.from({ length: 203 }, (_, i) => i));
    for (const b of batches.slice(0, -1)) assert.ok(b.length >= 10 && b.length <= 25, `batch of ${b.length}`);
    assert.ok(batches.at(-1)!.length <= 25);
  });

  it('a slow writer gets larger batches, and the producer waits only once maxPending items wait', async () => {
    const batches: number[][] = [];
    let release: () => void = () => undefined;
    const recorder = new BatchRecorder<number>({ minBatch: 2, maxBatch: 8, maxPending: 10, lingerMs: 60_000 }, async (batch) => {
      await new Promise<void>((resolve) => (release = resolve));
      batches.push(batch);
    });
    /** Lets the hanging writes finish, one after another, until `p` settles. */
    const releaseUntil = async (p: Promise<unknown>) => {
      let settled = false;
      void p.finally(() => (settled = true));
      while (!settled) {
        release();
        await tick();
      }
      await p;
    };
    // Items 0 and 1 start a write that hangs; the next nine are accepted without waiting.
    for (let i = 0; i < 11; i++) await recorder.add(i);
    let waiting = true;
    const twelfth = recorder.add(11).then(() => (waiting = false));
    await tick();
    assert.equal(waiting, true, 'the producer waits with maxPending items waiting');
    await releaseUntil(twelfth);
    await releaseUntil(recorder.end());
    assert.deepEqual(batches[0], [0, 1]);
    assert.equal(batches[1].length, 8, 'the writer took the most it may once it fell behind');
    assert.deepEqual(batches.flat(), Array.from({ length: 12 }, (_, i) => i));
  });

  it('items that wait while the producer stalls are written after lingerMs, short of minBatch', async () => {
    const batches: number[][] = [];
    const recorder = new BatchRecorder<number>({ minBatch: 100, maxBatch: 100, maxPending: 100, lingerMs: 20 }, async (batch) => {
      batches.push(batch);
    });
    await recorder.add(1);
    await recorder.add(2);
    assert.deepEqual(batches, [], 'not at once');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(batches, [[1, 2]], 'written once the producer had stalled for lingerMs');
    await recorder.add(3);
    await recorder.end();
    assert.deepEqual(batches, [[1, 2], [3]]);
  });

  it('a failed write is thrown to the producer, and nothing more is written', async () => {
    let writes = 0;
    const recorder = new BatchRecorder<number>({ minBatch: 1, maxBatch: 1, maxPending: 1, lingerMs: 60_000 }, async () => {
      writes++;
      throw new Error('database down');
    });
    await recorder.add(1).catch(() => undefined);
    await tick();
    await assert.rejects(async () => {
      for (let i = 2; i < 10; i++) await recorder.add(i);
      await recorder.end();
    }, /database down/);
    assert.equal(writes, 1);
  });
});
