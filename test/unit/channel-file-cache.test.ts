import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelFileCache } from '../../api/channel-file-cache';
import { etagOf } from '../../api/cached-response';

/** A counting generator: this tests the cache's bookkeeping, not the files. */
function countingGenerator() {
  const calls: string[] = [];
  const generate = (key: string) => async () => {
    calls.push(key);
    await new Promise((r) => setTimeout(r, 10));
    return Buffer.from(`<${key}>`);
  };
  return { calls, generate };
}

describe('the channel file cache', () => {
  it('generates each key once, however often it is asked for, with the ETag of the bytes', async () => {
    const cache = new ChannelFileCache(1024);
    const { calls, generate } = countingGenerator();
    const first = await cache.get('abc', generate('abc'));
    const again = await cache.get('abc', generate('abc'));
    assert.equal(String(first.body), '<abc>');
    assert.equal(first.etag, etagOf(Buffer.from('<abc>')));
    assert.equal(again, first);
    assert.deepEqual(calls, ['abc']);
  });

  it('concurrent requests for one key share one generation', async () => {
    const cache = new ChannelFileCache(1024);
    const { calls, generate } = countingGenerator();
    const results = await Promise.all(Array.from({ length: 8 }, () => cache.get('same', generate('same'))));
    assert.ok(results.every((r) => String(r.body) === '<same>'));
    assert.deepEqual(calls, ['same']);
  });

  it('stays within its byte bound, evicting the least recently used first', async () => {
    const cache = new ChannelFileCache(12); // each body here is 5 bytes: two fit, three do not
    const { calls, generate } = countingGenerator();
    for (const key of ['aaa', 'bbb', 'aaa', 'ccc', 'aaa', 'bbb']) await cache.get(key, generate(key));
    assert.deepEqual(calls, ['aaa', 'bbb', 'ccc', 'bbb']);
  });

  it('a failed generation is not remembered', async () => {
    const cache = new ChannelFileCache(1024);
    await assert.rejects(cache.get('x', async () => { throw new Error('xz failed'); }), /xz failed/);
    assert.equal(String((await cache.get('x', async () => Buffer.from('ok'))).body), 'ok');
  });
});
