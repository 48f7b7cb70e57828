import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CompressedCache } from '../../api/compressed-cache';

/** A counting stand-in for xz: this tests the cache's bookkeeping, not compression. */
function countingCompressor() {
  const calls: string[] = [];
  const compress = async (content: Buffer | string) => {
    calls.push(String(content));
    await new Promise((r) => setTimeout(r, 10));
    return Buffer.from(`z(${String(content)})`);
  };
  return { calls, compress };
}

describe('the compressed-body cache', () => {
  it('compresses each content once, however often it is asked for', async () => {
    const cache = new CompressedCache(1024);
    const { calls, compress } = countingCompressor();
    assert.equal(String(await cache.get('abc', compress)), 'z(abc)');
    assert.equal(String(await cache.get(Buffer.from('abc'), compress)), 'z(abc)');
    assert.deepEqual(calls, ['abc']);
  });

  it('concurrent requests for the same content share one compression', async () => {
    const cache = new CompressedCache(1024);
    const { calls, compress } = countingCompressor();
    const results = await Promise.all(Array.from({ length: 8 }, () => cache.get('same', compress)));
    assert.ok(results.every((r) => String(r) === 'z(same)'));
    assert.deepEqual(calls, ['same']);
  });

  it('stays within its byte bound, evicting the least recently used first', async () => {
    const cache = new CompressedCache(15); // each body here is 6 bytes: two fit, three do not
    const { calls, compress } = countingCompressor();
    await cache.get('aaa', compress);
    await cache.get('bbb', compress);
    await cache.get('aaa', compress); // aaa is now the most recent
    await cache.get('ccc', compress); // evicts bbb
    await cache.get('aaa', compress);
    await cache.get('bbb', compress);
    assert.deepEqual(calls, ['aaa', 'bbb', 'ccc', 'bbb']);
  });

  it('a failed compression is not remembered', async () => {
    const cache = new CompressedCache(1024);
    let fail = true;
    const compress = async (c: Buffer | string) => {
      if (fail) throw new Error('xz failed');
      return Buffer.from(String(c));
    };
    await assert.rejects(cache.get('x', compress), /xz failed/);
    fail = false;
    assert.equal(String(await cache.get('x', compress)), 'x');
  });
});
