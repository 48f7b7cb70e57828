import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConcurrentStarts } from '../../activities/concurrent-starts';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('concurrent workflow starts', () => {
  it('never has more than the limit in flight, and starts every item pushed', async () => {
    let inFlight = 0;
    let peak = 0;
    const done: number[] = [];
    const starts = new ConcurrentStarts<number>(3, async (n) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await tick();
      inFlight--;
      done.push(n);
    });
    for (let i = 0; i < 20; i++) starts.push(i);
    await starts.drain();
    assert.equal(peak, 3);
    assert.deepEqual([...done].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
    assert.equal(starts.started, 20);
  });

  it('pause holds back new starts until resume; drain resumes', async () => {
    const done: number[] = [];
    const starts = new ConcurrentStarts<number>(2, async (n) => {
      await tick();
      done.push(n);
    });
    starts.pause();
    starts.push(1, 2, 3);
    await tick();
    await tick();
    assert.deepEqual(done, [], 'nothing started while paused');
    assert.equal(starts.waiting, 3);
    starts.resume();
    starts.pause();
    await tick();
    await tick();
    assert.deepEqual(done.sort(), [1, 2], 'the two started on resume finish; the third waits');
    await starts.drain();
    assert.deepEqual(done.sort(), [1, 2, 3]);
  });

  it('push returns at once: the producer does not wait for the starts', () => {
    const starts = new ConcurrentStarts<number>(1, () => new Promise(() => undefined));
    starts.push(1, 2, 3);
    assert.equal(starts.waiting, 2);
  });

  it('drain reports the first failure and starts nothing after it', async () => {
    const seen: number[] = [];
    const starts = new ConcurrentStarts<number>(1, async (n) => {
      seen.push(n);
      if (n === 2) throw new Error('temporal is down');
    });
    starts.push(1, 2, 3, 4);
    await assert.rejects(starts.drain(), /temporal is down/);
    assert.deepEqual(seen, [1, 2]);
  });

  it('abandon drops what has not started', async () => {
    const seen: number[] = [];
    let release!: () => void;
    const starts = new ConcurrentStarts<number>(1, async (n) => {
      seen.push(n);
      if (n === 1) await new Promise<void>((resolve) => (release = resolve));
    });
    starts.push(1, 2, 3);
    starts.abandon();
    release();
    await starts.drain();
    assert.deepEqual(seen, [1]);
  });
});
