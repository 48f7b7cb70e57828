import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';

describe('projects', () => {
  let stack: TestStack;
  let readOnly: string;
  before(async () => {
    stack = await startTestStack({ worker: false });
    readOnly = await stack.keyFor('read-only');
  });
  after(async () => stack?.stop());

  const body = { name: 'nixpkgs-lite', repository_url: 'file:///srv/repo', description: 'a test' };

  it('an admin key creates a project, with the circus fields', async () => {
    const res = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body });
    assert.equal(res.status, 200);
    for (const field of ['id', 'name', 'description', 'repository_url', 'enabled', 'cache_enabled', 'created_at', 'updated_at']) {
      assert.ok(field in res.body, `missing ${field}`);
    }
    assert.equal(res.body.name, 'nixpkgs-lite');
    assert.equal(res.body.enabled, true);
    assert.match(res.body.created_at, /^\d{4}-\d{2}-\d{2}T/);
  });

  it('without a key the create is 401 and nothing is written', async () => {
    const res = await stack.request('POST', '/api/v1/projects', { body: { ...body, name: 'anon' } });
    assert.equal(res.status, 401);
    assert.equal(res.body.error_code, 'UNAUTHORIZED');
    assert.equal((await stack.request('GET', '/api/v1/projects?q=anon')).body.total, 0);
  });

  it('a read-only key gets 403', async () => {
    const res = await stack.request('POST', '/api/v1/projects', { key: readOnly, body: { ...body, name: 'ro' } });
    assert.equal(res.status, 403);
    assert.equal(res.body.error_code, 'FORBIDDEN');
  });

  it('a create-projects key may create', async () => {
    const creator = await stack.keyFor('create-projects');
    const res = await stack.request('POST', '/api/v1/projects', { key: creator, body: { ...body, name: 'by-creator' } });
    assert.equal(res.status, 200);
  });

  it('a bad body is a 400 naming the field', async () => {
    const res = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body: { name: 'ok-name' } });
    assert.equal(res.status, 400);
    assert.equal(res.body.error_code, 'VALIDATION_ERROR');
    assert.deepEqual(res.body.details[0], { field: 'body.repository_url', message: 'is required' });
    const typed = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body: { name: 42, repository_url: 'x' } });
    assert.equal(typed.status, 400);
    assert.equal(typed.body.details[0].field, 'body.name');
    const malformed = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, rawBody: '{"name": ', headers: { 'content-type': 'application/json' } });
    assert.equal(malformed.status, 400);
    const unknown = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body: { ...body, name: 'x1', colour: 'red' } });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.details[0].field, 'body.colour');
  });

  it('the same name again is a 409', async () => {
    const res = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body });
    assert.equal(res.status, 409);
    assert.equal(res.body.error_code, 'CONFLICT');
  });

  it('lists answer a page object, get/update/delete work, and unknown ids are 404', async () => {
    const page = await stack.request('GET', '/api/v1/projects?limit=1&offset=0');
    assert.equal(page.status, 200);
    assert.equal(page.body.limit, 1);
    assert.equal(page.body.offset, 0);
    assert.equal(page.body.items.length, 1);
    assert.ok(page.body.total >= 2);
    const badLimit = await stack.request('GET', '/api/v1/projects?limit=abc');
    assert.equal(badLimit.status, 400);
    assert.equal(badLimit.body.details[0].field, 'query.limit');

    const created = (await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body: { ...body, name: 'to-change' } })).body;
    const got = await stack.request('GET', `/api/v1/projects/${created.id}`);
    assert.equal(got.body.name, 'to-change');
    const updated = await stack.request('PUT', `/api/v1/projects/${created.id}`, { key: stack.adminKey, body: { description: 'changed', enabled: false } });
    assert.equal(updated.status, 200);
    assert.equal(updated.body.description, 'changed');
    assert.equal(updated.body.enabled, false);
    const roUpdate = await stack.request('PUT', `/api/v1/projects/${created.id}`, { key: readOnly, body: { description: 'no' } });
    assert.equal(roUpdate.status, 403);
    const del = await stack.request('DELETE', `/api/v1/projects/${created.id}`, { key: stack.adminKey });
    assert.equal(del.status, 204);
    assert.equal(del.text, '');
    assert.equal((await stack.request('GET', `/api/v1/projects/${created.id}`)).status, 404);
    assert.equal((await stack.request('DELETE', `/api/v1/projects/${created.id}`, { key: stack.adminKey })).status, 404);
    const badId = await stack.request('GET', '/api/v1/projects/not-a-uuid');
    assert.equal(badId.status, 400);
    assert.equal(badId.body.details[0].field, 'params.id');
  });

  it('every mutation leaves an audit row without secrets', async () => {
    const rows = await stack.db('audit_log').where({ target_kind: 'project' }).orderBy('occurred_at');
    assert.ok(rows.length >= 4);
    const create = rows.find((r) => r.action === 'POST /api/v1/projects');
    assert.ok(create);
    assert.equal(create.actor_kind, 'api_key');
    assert.equal(create.actor_name, 'test-admin');
    assert.ok(create.remote_addr);
    assert.ok(!JSON.stringify(rows).includes(stack.adminKey));
  });
});
