import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';

describe('a NUL byte in text input', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack({ worker: false });
  });
  after(async () => stack?.stop());

  it('is a 400 VALIDATION_ERROR, not a 500, where no schema pattern catches it first (password login, news)', async () => {
    const login = await stack.request('POST', '/api/v1/auth/login', { body: { username: 'a\u0000', password: 'x' } });
    assert.equal(login.status, 400, login.text);
    assert.equal(login.body.error_code, 'VALIDATION_ERROR');
    const news = await stack.request('POST', '/api/v1/news', { key: stack.adminKey, body: { title: 'nul\u0000', content: 'c' } });
    assert.equal(news.status, 400, news.text);
    assert.equal(Number((await stack.db('news').count<{ n: string }[]>('* as n'))[0].n), 0);
  });
});
