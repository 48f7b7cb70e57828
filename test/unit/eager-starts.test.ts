import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EagerStartShare, LIVE_POLLER_MS, liveWorkerIdentities } from '../../lib/eager-starts';

describe('EagerStartShare: which build starts ask for an eager first task', () => {
  const take = async (share: EagerStartShare, n: number) => {
    const out: boolean[] = [];
    for (let i = 0; i < n; i++) out.push(await share.next());
    return out;
  };

  it('asks for every start when this is the only worker', async () => {
    assert.deepEqual(await take(new EagerStartShare(async () => 1), 5), [true, true, true, true, true]);
  });

  it('asks for one start in N when N workers poll, so the others reach every worker through the task queue', async () => {
    assert.deepEqual(await take(new EagerStartShare(async () => 3), 7), [true, false, false, true, false, false, true]);
  });

  it('asks for none when the workers cannot be counted, and counts again after refreshMs', async () => {
    let now = 0;
    let fail = true;
    let asked = 0;
    const share = new EagerStartShare(async () => {
      asked++;
      if (fail) throw new Error('Temporal unavailable');
      return 1;
    }, 1_000, () => now);
    assert.deepEqual(await take(share, 3), [false, false, false]);
    assert.equal(asked, 1, 'one count per refresh, not one per start');
    fail = false;
    now = 999;
    assert.equal(await share.next(), false);
    now = 1_000;
    assert.equal(await share.next(), true);
    assert.equal(asked, 2);
  });

  it('counts once for starts that ask at the same time', async () => {
    let asked = 0;
    const share = new EagerStartShare(async () => {
      asked++;
      await new Promise((r) => setTimeout(r, 10));
      return 2;
    });
    const all = await Promise.all(Array.from({ length: 8 }, () => share.next()));
    assert.equal(asked, 1);
    assert.equal(all.filter(Boolean).length, 4);
  });
});

describe('liveWorkerIdentities', () => {
  it('counts distinct identities heard from lately, not pollers', () => {
    const now = new Date('2026-12-01T06:00:00Z');
    const ago = (ms: number) => new Date(now.getTime() - ms);
    const n = liveWorkerIdentities(
      [
        { identity: '100@a', lastAccessTime: ago(1_000) },
        { identity: '100@a', lastAccessTime: ago(2_000) },
        { identity: '200@b', lastAccessTime: ago(LIVE_POLLER_MS - 1) },
        { identity: '300@c', lastAccessTime: ago(LIVE_POLLER_MS + 1) },
        { identity: '', lastAccessTime: ago(0) },
      ],
      now,
    );
    assert.equal(n, 2);
  });
});
