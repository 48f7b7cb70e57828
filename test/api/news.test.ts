import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';

describe('news', () => {
  let stack: TestStack;
  let readOnly: string;
  before(async () => {
    stack = await startTestStack({ worker: false });
    readOnly = await stack.keyFor('read-only');
  });
  after(async () => stack?.stop());

  it('an admin posts news: 201 with id, title, content, created_by (the principal) and created_at', async () => {
    const res = await stack.request('POST', '/api/v1/news', { key: stack.adminKey, body: { title: 'Maintenance', content: 'Builders restart at noon.' } });
    assert.equal(res.status, 201);
    assert.match(res.body.id, /^[0-9a-f-]{36}$/);
    assert.equal(res.body.title, 'Maintenance');
    assert.equal(res.body.content, 'Builders restart at noon.');
    assert.equal(res.body.created_by, 'test-admin');
    assert.match(res.body.created_at, /^\d{4}-\d{2}-\d{2}T/);
  });

  it('anyone reads the news as a bare array, newest first', async () => {
    await stack.request('POST', '/api/v1/news', { key: stack.adminKey, body: { title: 'Second', content: 'later' } });
    const res = await stack.request('GET', '/api/v1/news');
    assert.equal(res.status, 200);
    assert.ok(Array.isArray(res.body));
    assert.deepEqual(res.body.map((n: { title: string }) => n.title), ['Second', 'Maintenance']);
  });

  it('bad input is a 400 naming the field, and nothing is posted', async () => {
    const noContent = await stack.request('POST', '/api/v1/news', { key: stack.adminKey, body: { title: 'x' } });
    assert.equal(noContent.status, 400);
    assert.deepEqual(noContent.body.details[0], { field: 'body.content', message: 'is required' });
    const emptyTitle = await stack.request('POST', '/api/v1/news', { key: stack.adminKey, body: { title: '', content: 'y' } });
    assert.equal(emptyTitle.status, 400);
    assert.equal(emptyTitle.body.details[0].field, 'body.title');
    const typed = await stack.request('POST', '/api/v1/news', { key: stack.adminKey, body: { title: 1, content: 'y' } });
    assert.equal(typed.body.details[0].field, 'body.title');
    assert.equal((await stack.request('GET', '/api/v1/news')).body.length, 2);
  });

  it('posting or deleting without credentials is a 401, and with a read-only key a 403', async () => {
    const id = (await stack.request('GET', '/api/v1/news')).body[0].id;
    assert.equal((await stack.request('POST', '/api/v1/news', { body: { title: 'a', content: 'b' } })).status, 401);
    assert.equal((await stack.request('DELETE', `/api/v1/news/${id}`)).status, 401);
    const post = await stack.request('POST', '/api/v1/news', { key: readOnly, body: { title: 'a', content: 'b' } });
    assert.equal(post.status, 403);
    assert.equal(post.body.error_code, 'FORBIDDEN');
    assert.equal((await stack.request('DELETE', `/api/v1/news/${id}`, { key: readOnly })).status, 403);
    assert.equal((await stack.request('GET', '/api/v1/news')).body.length, 2);
  });

  it('an admin deletes an entry (204); deleting it again is a 404, a malformed id a 400', async () => {
    const id = (await stack.request('GET', '/api/v1/news')).body[0].id;
    const del = await stack.request('DELETE', `/api/v1/news/${id}`, { key: stack.adminKey });
    assert.equal(del.status, 204);
    assert.equal(del.text, '');
    assert.deepEqual((await stack.request('GET', '/api/v1/news')).body.map((n: { title: string }) => n.title), ['Maintenance']);
    const again = await stack.request('DELETE', `/api/v1/news/${id}`, { key: stack.adminKey });
    assert.equal(again.status, 404);
    assert.equal(again.body.error_code, 'NOT_FOUND');
    assert.equal((await stack.request('DELETE', '/api/v1/news/latest', { key: stack.adminKey })).status, 400);
  });

  it('posting and deleting are audited', async () => {
    const rows = await stack.db('audit_log').where({ target_kind: 'news' });
    assert.ok(rows.some((r) => r.action === 'POST /api/v1/news' && r.actor_name === 'test-admin'));
    assert.ok(rows.some((r) => r.action === 'DELETE /api/v1/news/{id}'));
  });
});
