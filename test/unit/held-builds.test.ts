import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { heldBuildsReleased, untilHeldBuildsReleased } from '../../activities/held-builds';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('held builds released: the start loop looks again at once', () => {
  it('a wait ends at the release, long before its sleep', async () => {
    const t0 = Date.now();
    const waits = [untilHeldBuildsReleased(sleep(5_000)), untilHeldBuildsReleased(sleep(5_000))];
    setTimeout(heldBuildsReleased, 20);
    await Promise.all(waits);
    assert.ok(Date.now() - t0 < 1_000, `both ended after ${Date.now() - t0} ms`);
  });

  it('without a release a wait ends with its sleep, and a release with no one waiting wakes no later wait', async () => {
    heldBuildsReleased();
    const t0 = Date.now();
    await untilHeldBuildsReleased(sleep(80));
    const waited = Date.now() - t0;
    assert.ok(waited >= 70, `ended after ${waited} ms`);
  });

  it('a wait that ended is not woken again, and the next wait needs the next release', async () => {
    await Promise.race([untilHeldBuildsReleased(sleep(5_000)), (async () => heldBuildsReleased())()]);
    let ended = false;
    const next = untilHeldBuildsReleased(sleep(5_000)).then(() => (ended = true));
    await sleep(30);
    assert.equal(ended, false);
    heldBuildsReleased();
    await next;
    assert.equal(ended, true);
  });
});
