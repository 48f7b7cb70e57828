import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SeriesCache } from '../../api/series-cache';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SeriesCache', () => {
  it('computes a series once for concurrent callers of the same key', async () => {
    const cache = new SeriesCache(60_000);
    let computations = 0;
    const compute = async () => {
      computations++;
      await sleep(20);
      return computations;
    };
    const answers = await Promise.all(Array.from({ length: 50 }, () => cache.get('k', compute)));
    assert.deepEqual(new Set(answers), new Set([1]));
    assert.equal(computations, 1);
    assert.equal(await cache.get('other', compute), 2);
  });

  it('answers at once with the last value once it is stale, and refreshes it in the background', async () => {
    const cache = new SeriesCache(10);
    let version = 0;
    let release: () => void = () => undefined;
    const compute = async () => {
      version++;
      if (version > 1) await new Promise<void>((r) => (release = r));
      return version;
    };
    assert.equal(await cache.get('k', compute), 1);
    await sleep(20);
    assert.equal(await cache.get('k', compute), 1, 'stale value served while the refresh runs');
    assert.equal(await cache.get('k', compute), 1);
    assert.equal(version, 2, 'one refresh only');
    release();
    await sleep(5);
    assert.equal(await cache.get('k', compute), 2);
  });

  it('does not remember a failure: the next caller computes again', async () => {
    const cache = new SeriesCache(60_000);
    let calls = 0;
    const compute = async () => {
      calls++;
      if (calls === 1) throw new Error('database down');
      return 'ok';
    };
    await assert.rejects(cache.get('k', compute), /database down/);
    assert.equal(await cache.get('k', compute), 'ok');
  });
});
