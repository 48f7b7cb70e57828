import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CredentialCache } from '../../api/credential-cache';
import { WriteEpoch } from '../../api/single-flight';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const always = () => true;

/** A lookup that counts its calls and answers `value()` as it is at the time. */
function countingLookup<T>(value: () => T | undefined) {
  const lookup = async () => {
    lookup.calls++;
    await sleep(5);
    return value();
  };
  lookup.calls = 0;
  return lookup;
}

describe('CredentialCache', () => {
  it('remembers a credential that was found for its time to live, then looks it up again', async () => {
    let now = 1_000;
    const cache = new CredentialCache<string>(new WriteEpoch(), 100, 10, () => now);
    const lookup = countingLookup(() => 'alice');
    assert.equal(await cache.get('h', lookup, always), 'alice');
    now += 99;
    assert.equal(await cache.get('h', lookup, always), 'alice');
    assert.equal(lookup.calls, 1);
    now += 1;
    assert.equal(await cache.get('h', lookup, always), 'alice');
    assert.equal(lookup.calls, 2, 'looked up again once its time had passed');
  });

  it('forgets everything at a write of the process (a bumped epoch), even one that ended during a lookup', async () => {
    const epoch = new WriteEpoch();
    const cache = new CredentialCache<string>(epoch, 60_000);
    let role = 'admin';
    const lookup = countingLookup(() => role);
    assert.equal(await cache.get('h', lookup, always), 'admin');
    role = 'read-only';
    epoch.bump();
    assert.equal(await cache.get('h', lookup, always), 'read-only', 'the write is seen by the next request');
    // A lookup under way when a write ends: its answer serves its own request, but is not remembered past the write.
    const during = cache.get('other', lookup, always);
    epoch.bump();
    await during;
    const calls = lookup.calls;
    await cache.get('other', lookup, always);
    assert.equal(lookup.calls, calls + 1);
  });

  it('never remembers a credential that was not found, and forgets one that is no longer found', async () => {
    const epoch = new WriteEpoch();
    const cache = new CredentialCache<string>(epoch, 60_000);
    let live = false;
    const lookup = countingLookup(() => (live ? 'key' : undefined));
    assert.equal(await cache.get('h', lookup, always), undefined);
    live = true; // created by another process: accepted at once
    assert.equal(await cache.get('h', lookup, always), 'key');
    assert.equal(lookup.calls, 2);
    live = false;
    epoch.bump();
    assert.equal(await cache.get('h', lookup, always), undefined);
    assert.equal(cache.size, 0);
  });

  it('looks up again an entry its own facts refuse (an expired session, a key due to be marked used)', async () => {
    let now = 1_000;
    const cache = new CredentialCache<{ until: number }>(new WriteEpoch(), 60_000, 10, () => now);
    const lookup = countingLookup(() => ({ until: now + 30 }));
    const fresh = (v: { until: number }, at: number) => at < v.until;
    await cache.get('h', lookup, fresh);
    now += 29;
    await cache.get('h', lookup, fresh);
    assert.equal(lookup.calls, 1);
    now += 1;
    await cache.get('h', lookup, fresh);
    assert.equal(lookup.calls, 2);
  });

  it('shares one lookup among concurrent requests of one credential, and remembers nothing with a time to live of 0', async () => {
    const cache = new CredentialCache<string>(new WriteEpoch(), 0);
    const lookup = countingLookup(() => 'k');
    assert.deepEqual(new Set(await Promise.all(Array.from({ length: 20 }, () => cache.get('h', lookup, always)))), new Set(['k']));
    assert.equal(lookup.calls, 1);
    await cache.get('h', lookup, always);
    assert.equal(lookup.calls, 2);
    assert.equal(cache.size, 0);
  });

  it('holds at most its bound of credentials, dropping the oldest', async () => {
    const cache = new CredentialCache<string>(new WriteEpoch(), 60_000, 3);
    for (const h of ['a', 'b', 'c', 'd']) await cache.get(h, async () => h, always);
    assert.equal(cache.size, 3);
    const lookup = countingLookup(() => 'a');
    await cache.get('a', lookup, always);
    assert.equal(lookup.calls, 1, 'the oldest was dropped');
    await cache.get('d', lookup, always);
    assert.equal(lookup.calls, 1, 'a newer one is still there');
  });
});
