import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { LAST_USED_RESOLUTION_SECONDS } from '../../api/queries/api-keys';
import { writeEpochOf } from '../../api/single-flight';

describe('API keys', () => {
  let stack: TestStack;
  let readOnly: string;
  before(async () => {
    stack = await startTestStack({ worker: false });
    readOnly = await stack.keyFor('read-only');
  });
  after(async () => stack?.stop());

  it('an admin creates a key: 200 with id, name, role, key and created_at, the key shown once', async () => {
    const res = await stack.request('POST', '/api/v1/api-keys', { key: stack.adminKey, body: { name: 'ci-bot', role: 'eval-jobset' } });
    assert.equal(res.status, 200);
    assert.equal(res.body.name, 'ci-bot');
    assert.equal(res.body.role, 'eval-jobset');
    assert.match(res.body.id, /^[0-9a-f-]{36}$/);
    assert.match(res.body.key, /^rmk_[A-Za-z0-9_-]{43}$/);
    assert.match(res.body.created_at, /^\d{4}-\d{2}-\d{2}T/);
    const stored = await stack.db('api_keys').where({ id: res.body.id }).first();
    assert.notEqual(stored.key_hash, res.body.key, 'only the hash is stored');
    assert.ok(!JSON.stringify(stored).includes(res.body.key));
  });

  it('the role defaults to read-only', async () => {
    const res = await stack.request('POST', '/api/v1/api-keys', { key: stack.adminKey, body: { name: 'viewer' } });
    assert.equal(res.status, 200);
    assert.equal(res.body.role, 'read-only');
  });

  it('the list is a bare array of {id, name, role, created_at, last_used_at}, never a key or hash', async () => {
    const res = await stack.request('GET', '/api/v1/api-keys', { key: stack.adminKey });
    assert.equal(res.status, 200);
    assert.ok(Array.isArray(res.body));
    const bot = res.body.find((k: { name: string }) => k.name === 'ci-bot');
    assert.ok(bot);
    for (const field of ['id', 'name', 'role', 'created_at', 'last_used_at']) assert.ok(field in bot, `missing ${field}`);
    for (const k of res.body) {
      assert.equal(k.key, undefined);
      assert.equal(k.key_hash, undefined);
      assert.equal(k.key_prefix, undefined);
    }
    assert.ok(!res.text.includes(stack.adminKey));
  });

  it('a key that is used gets last_used_at set', async () => {
    const created = (await stack.request('POST', '/api/v1/api-keys', { key: stack.adminKey, body: { name: 'soon-used' } })).body;
    const before = (await stack.request('GET', '/api/v1/api-keys', { key: stack.adminKey })).body.find((k: { id: string }) => k.id === created.id);
    assert.equal(before.last_used_at, null);
    assert.equal((await stack.request('GET', '/api/v1/me', { key: created.key })).status, 200);
    const after = (await stack.request('GET', '/api/v1/api-keys', { key: stack.adminKey })).body.find((k: { id: string }) => k.id === created.id);
    assert.match(after.last_used_at, /^\d{4}-\d{2}-\d{2}T/);
  });

  it('last_used_at is written at most once a minute per key (a request is not a write), and moves on after that', async () => {
    const created = (await stack.request('POST', '/api/v1/api-keys', { key: stack.adminKey, body: { name: 'busy' } })).body;
    assert.equal((await stack.request('GET', '/api/v1/me', { key: created.key })).status, 200);
    const first = (await stack.db('api_keys').where({ id: created.id }).first()).last_used_at as Date;
    assert.ok(first instanceof Date);
    for (let i = 0; i < 3; i++) assert.equal((await stack.request('GET', '/api/v1/me', { key: created.key })).status, 200);
    assert.equal(((await stack.db('api_keys').where({ id: created.id }).first()).last_used_at as Date).getTime(), first.getTime(), 'not rewritten within the minute');
    // Older than the resolution: the next use records it again.
    await stack.db('api_keys').where({ id: created.id }).update({ last_used_at: stack.db.raw(`now() - interval '${LAST_USED_RESOLUTION_SECONDS + 1} seconds'`) });
    // A minute passing, written behind the app's back: tell it, as a write through it would (api/credential-cache.ts).
    writeEpochOf(stack.db).bump();
    const stale = (await stack.db('api_keys').where({ id: created.id }).first()).last_used_at as Date;
    assert.equal((await stack.request('GET', '/api/v1/me', { key: created.key })).status, 200);
    const again = (await stack.db('api_keys').where({ id: created.id }).first()).last_used_at as Date;
    assert.ok(again.getTime() > stale.getTime() + LAST_USED_RESOLUTION_SECONDS * 1000, 'recorded anew');
  });

  it('a revoked key answers 204, leaves the list and then gets 401', async () => {
    const created = (await stack.request('POST', '/api/v1/api-keys', { key: stack.adminKey, body: { name: 'doomed', role: 'admin' } })).body;
    assert.equal((await stack.request('GET', '/api/v1/api-keys', { key: created.key })).status, 200);
    const del = await stack.request('DELETE', `/api/v1/api-keys/${created.id}`, { key: stack.adminKey });
    assert.equal(del.status, 204);
    assert.equal(del.text, '');
    const refused = await stack.request('GET', '/api/v1/api-keys', { key: created.key });
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error_code, 'UNAUTHORIZED');
    const list = (await stack.request('GET', '/api/v1/api-keys', { key: stack.adminKey })).body;
    assert.ok(!list.some((k: { id: string }) => k.id === created.id));
  });

  it('a key cannot revoke itself (409, still valid); the key made to replace it can', async () => {
    const old = (await stack.request('POST', '/api/v1/api-keys', { key: stack.adminKey, body: { name: 'rotating', role: 'admin' } })).body;
    const self = await stack.request('DELETE', `/api/v1/api-keys/${old.id}`, { key: old.key });
    assert.equal(self.status, 409, self.text);
    assert.equal(self.body.error_code, 'CONFLICT');
    assert.match(self.body.error, /cannot revoke itself/);
    assert.equal((await stack.request('GET', '/api/v1/api-keys', { key: old.key })).status, 200, 'the key still works');
    const replacement = (await stack.request('POST', '/api/v1/api-keys', { key: old.key, body: { name: 'rotated', role: 'admin' } })).body;
    assert.equal((await stack.request('DELETE', `/api/v1/api-keys/${old.id}`, { key: replacement.key })).status, 204);
    assert.equal((await stack.request('GET', '/api/v1/api-keys', { key: old.key })).status, 401);
  });

  it('revoking an unknown or already revoked key is a 404; a malformed id is a 400', async () => {
    const created = (await stack.request('POST', '/api/v1/api-keys', { key: stack.adminKey, body: { name: 'twice' } })).body;
    assert.equal((await stack.request('DELETE', `/api/v1/api-keys/${created.id}`, { key: stack.adminKey })).status, 204);
    const again = await stack.request('DELETE', `/api/v1/api-keys/${created.id}`, { key: stack.adminKey });
    assert.equal(again.status, 404);
    assert.equal(again.body.error_code, 'NOT_FOUND');
    const bad = await stack.request('DELETE', '/api/v1/api-keys/not-a-uuid', { key: stack.adminKey });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.details[0].field, 'params.id');
  });

  it('bad input is a 400 naming the field and creates nothing', async () => {
    const count = async () => Number((await stack.db('api_keys').count<{ count: string }[]>('* as count'))[0].count);
    const n = await count();
    const noName = await stack.request('POST', '/api/v1/api-keys', { key: stack.adminKey, body: { role: 'admin' } });
    assert.equal(noName.status, 400);
    assert.equal(noName.body.error_code, 'VALIDATION_ERROR');
    assert.deepEqual(noName.body.details[0], { field: 'body.name', message: 'is required' });
    const badRole = await stack.request('POST', '/api/v1/api-keys', { key: stack.adminKey, body: { name: 'x', role: 'superuser' } });
    assert.equal(badRole.status, 400);
    assert.equal(badRole.body.details[0].field, 'body.role');
    const emptyName = await stack.request('POST', '/api/v1/api-keys', { key: stack.adminKey, body: { name: '' } });
    assert.equal(emptyName.status, 400);
    assert.equal(emptyName.body.details[0].field, 'body.name');
    assert.equal(await count(), n);
  });

  it('without credentials every route is 401', async () => {
    assert.equal((await stack.request('GET', '/api/v1/api-keys')).status, 401);
    assert.equal((await stack.request('POST', '/api/v1/api-keys', { body: { name: 'anon' } })).status, 401);
    const someId = (await stack.request('GET', '/api/v1/api-keys', { key: stack.adminKey })).body[0].id;
    assert.equal((await stack.request('DELETE', `/api/v1/api-keys/${someId}`)).status, 401);
  });

  it('a read-only key gets 403 on every route', async () => {
    const list = await stack.request('GET', '/api/v1/api-keys', { key: readOnly });
    assert.equal(list.status, 403);
    assert.equal(list.body.error_code, 'FORBIDDEN');
    assert.equal((await stack.request('POST', '/api/v1/api-keys', { key: readOnly, body: { name: 'escalate', role: 'admin' } })).status, 403);
    const someId = (await stack.request('GET', '/api/v1/api-keys', { key: stack.adminKey })).body[0].id;
    assert.equal((await stack.request('DELETE', `/api/v1/api-keys/${someId}`, { key: readOnly })).status, 403);
  });

  it('creating a key is audited without the key', async () => {
    const created = (await stack.request('POST', '/api/v1/api-keys', { key: stack.adminKey, body: { name: 'audited' } })).body;
    const row = await stack.db('audit_log').where({ target_kind: 'api_key', target_id: created.id }).first();
    assert.ok(row);
    assert.equal(row.action, 'POST /api/v1/api-keys');
    assert.equal(row.actor_name, 'test-admin');
    assert.deepEqual(row.details, { name: 'audited', role: 'read-only' });
    assert.ok(!JSON.stringify(await stack.db('audit_log')).includes(created.key));
  });
});
