import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CoalescedQuery } from '../../lib/coalesced-query';

/** A query over numbers whose runs the test releases one by one; it answers the even keys and fails on a negative one. */
function heldQuery() {
  const runs: Array<{ keys: number[]; release: () => void }> = [];
  const query = new CoalescedQuery<number>((keys) => new Promise((resolve, reject) => {
    runs.push({ keys: [...keys].sort((a, b) => a - b), release: () => (keys.some((k) => k < 0) ? reject(new Error(`bad key among ${keys.join(',')}`)) : resolve(new Set(keys.filter((k) => k % 2 === 0)))) });
  }));
  const nextRun = async (n: number) => {
    for (let i = 0; i < 100 && runs.length < n; i++) await new Promise((r) => setImmediate(r));
    assert.equal(runs.length, n, `query run ${n} started`);
    return runs[n - 1];
  };
  return { query, runs, nextRun };
}

describe('a coalesced query', () => {
  it('runs one query at a time; callers that ask meanwhile share the next one, each answered for its own keys', async () => {
    const { query, runs, nextRun } = heldQuery();
    const first = query.ask([1, 2]);
    (await nextRun(1)).release();
    assert.deepEqual([...(await first)], [2]);

    const a = query.ask([2, 3]);
    const running = await nextRun(2);
    // Asked while a query runs: they wait for the next one, asked with the union of their keys.
    const b = query.ask([4, 5]);
    const c = query.ask([4, 6, 7]);
    assert.equal(runs.length, 2);
    running.release();
    assert.deepEqual([...(await a)], [2]);
    const shared = await nextRun(3);
    assert.deepEqual(shared.keys, [4, 5, 6, 7]);
    shared.release();
    assert.deepEqual([...(await b)], [4]);
    assert.deepEqual([...(await c)].sort(), [4, 6]);
    assert.equal(runs.length, 3, 'three queries for five callers');
  });

  it('a caller is never answered by a query that started before it asked', async () => {
    const { query, nextRun } = heldQuery();
    const early = query.ask([2]);
    const run = await nextRun(1);
    const late = query.ask([2]);
    run.release();
    await early;
    // The late caller's key was in the running query too, but it waits for a query of its own.
    (await nextRun(2)).release();
    assert.deepEqual([...(await late)], [2]);
  });

  it("a failed shared query asks each of its callers again on its own: one caller's bad key fails only that caller", async () => {
    const { query, runs, nextRun } = heldQuery();
    const blocker = query.ask([0]);
    const running = await nextRun(1);
    const good = query.ask([8, 9]);
    const bad = query.ask([-1]);
    running.release();
    await blocker;
    (await nextRun(2)).release();
    (await nextRun(3)).release();
    (await nextRun(4)).release();
    assert.deepEqual([...(await good)], [8]);
    await assert.rejects(bad, /bad key/);
    assert.deepEqual(runs.slice(1).map((r) => r.keys), [[-1, 8, 9], [8, 9], [-1]]);
  });

  it('an empty question is answered at once, without a query', async () => {
    const { query, runs } = heldQuery();
    assert.deepEqual([...(await query.ask([]))], []);
    assert.equal(runs.length, 0);
  });
});
