import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';

const ENTRY_FIELDS = ['id', 'occurred_at', 'actor_kind', 'actor_id', 'actor_name', 'action', 'target_kind', 'target_id', 'details', 'remote_addr'];

describe('admin audit log', () => {
  let stack: TestStack;
  let readOnly: string;
  let newsId: string;
  before(async () => {
    stack = await startTestStack({ worker: false });
    readOnly = await stack.keyFor('read-only');
    const news = await stack.request('POST', '/api/v1/news', { key: stack.adminKey, body: { title: 'one', content: 'first' } });
    newsId = news.body.id;
    await stack.request('POST', '/api/v1/news', { key: stack.adminKey, body: { title: 'two', content: 'second' } });
    await stack.request('DELETE', `/api/v1/news/${newsId}`, { key: stack.adminKey });
    await stack.request('POST', '/api/v1/api-keys', { key: stack.adminKey, body: { name: 'another' } });
  });
  after(async () => stack?.stop());

  it('answers a page object of AuditLogEntry, newest first', async () => {
    const res = await stack.request('GET', '/api/v1/admin/audit-log', { key: stack.adminKey });
    assert.equal(res.status, 200);
    assert.equal(res.body.total, 4);
    assert.equal(res.body.limit, 50);
    assert.equal(res.body.offset, 0);
    assert.equal(res.body.items.length, 4);
    for (const field of ENTRY_FIELDS) assert.ok(field in res.body.items[0], `missing ${field}`);
    assert.equal(res.body.items[0].action, 'POST /api/v1/api-keys');
    assert.equal(res.body.items[3].action, 'POST /api/v1/news');
    const first = res.body.items[3];
    assert.equal(first.actor_kind, 'api_key');
    assert.equal(first.actor_name, 'test-admin');
    assert.deepEqual(first.details, { title: 'one' });
    assert.match(first.occurred_at, /^\d{4}-\d{2}-\d{2}T/);
    assert.ok(first.remote_addr);
  });

  it('filters on action, actor_name, target_kind and target_id, and pages with limit and offset', async () => {
    const byAction = await stack.request('GET', `/api/v1/admin/audit-log?action=${encodeURIComponent('DELETE /api/v1/news/{id}')}`, { key: stack.adminKey });
    assert.equal(byAction.body.total, 1);
    assert.equal(byAction.body.items[0].target_id, newsId);
    const byKind = await stack.request('GET', '/api/v1/admin/audit-log?target_kind=news', { key: stack.adminKey });
    assert.equal(byKind.body.total, 3);
    const byTarget = await stack.request('GET', `/api/v1/admin/audit-log?target_kind=news&target_id=${newsId}`, { key: stack.adminKey });
    assert.equal(byTarget.body.total, 2);
    const byActor = await stack.request('GET', '/api/v1/admin/audit-log?actor_name=test-admin', { key: stack.adminKey });
    assert.equal(byActor.body.total, 4);
    const nobody = await stack.request('GET', '/api/v1/admin/audit-log?actor_name=nobody', { key: stack.adminKey });
    assert.deepEqual(nobody.body.items, []);
    assert.equal(nobody.body.total, 0);
    const page = await stack.request('GET', '/api/v1/admin/audit-log?limit=2&offset=1', { key: stack.adminKey });
    assert.equal(page.body.items.length, 2);
    assert.equal(page.body.limit, 2);
    assert.equal(page.body.offset, 1);
    assert.equal(page.body.total, 4);
  });

  it('bad query parameters are a 400 naming the field', async () => {
    const limit = await stack.request('GET', '/api/v1/admin/audit-log?limit=0', { key: stack.adminKey });
    assert.equal(limit.status, 400);
    assert.equal(limit.body.details[0].field, 'query.limit');
    const unknown = await stack.request('GET', '/api/v1/admin/audit-log?colour=red', { key: stack.adminKey });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.details[0].field, 'query.colour');
  });

  it('without credentials it is a 401, and with a read-only key a 403', async () => {
    const anon = await stack.request('GET', '/api/v1/admin/audit-log');
    assert.equal(anon.status, 401);
    const ro = await stack.request('GET', '/api/v1/admin/audit-log', { key: readOnly });
    assert.equal(ro.status, 403);
    assert.equal(ro.body.error_code, 'FORBIDDEN');
  });

  it('reading the audit log is not itself audited', async () => {
    const res = await stack.request('GET', '/api/v1/admin/audit-log', { key: stack.adminKey });
    assert.equal(res.body.total, 4);
  });
});
