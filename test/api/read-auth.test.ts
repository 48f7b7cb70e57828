import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';

describe('the setting that requires a key for reads', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack({ worker: false, env: { RINGMASTER_REQUIRE_AUTH_FOR_READS: '1' } });
  });
  after(async () => stack?.stop());

  it('a read without a key is a 401', async () => {
    const res = await stack.request('GET', '/api/v1/projects');
    assert.equal(res.status, 401);
    assert.equal(res.body.error_code, 'UNAUTHORIZED');
  });

  it('a read with any valid key, even read-only, is answered', async () => {
    const res = await stack.request('GET', '/api/v1/projects', { key: await stack.keyFor('read-only') });
    assert.equal(res.status, 200);
    assert.equal(res.body.total, 0);
  });

  it('health, metrics and the OpenAPI document stay public', async () => {
    assert.notEqual((await stack.request('GET', '/health')).status, 401);
    assert.equal((await stack.request('GET', '/prometheus')).status, 200);
    assert.equal((await stack.request('GET', '/api/v1/openapi.json')).status, 200);
  });
});
