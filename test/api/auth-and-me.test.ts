import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { sessionHeaders, signIn } from '../support/session';
import { SESSION_COOKIE } from '../../api/queries/sessions';
import { createApiKey } from '../../api/queries/api-keys';

describe('password login, logout and /me', () => {
  let stack: TestStack;
  let readOnly: string;
  let daveId: string;
  before(async () => {
    stack = await startTestStack({ worker: false });
    readOnly = await stack.keyFor('read-only');
    const made = await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: { username: 'dave', email: 'dave@example.org', password: 'daves secret', full_name: 'Dave' } });
    assert.equal(made.status, 200);
    daveId = made.body.id;
    const admin = await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: { username: 'root', email: 'root@example.org', password: 'roots secret', role: 'admin' } });
    assert.equal(admin.status, 200);
  });
  after(async () => stack?.stop());

  it('a right password answers {user, csrf_token} and sets an HttpOnly, SameSite=Lax, Path=/ session cookie', async () => {
    const res = await stack.request('POST', '/api/v1/auth/login', { body: { username: 'dave', password: 'daves secret' } });
    assert.equal(res.status, 200);
    assert.equal(res.body.user.id, daveId);
    assert.equal(res.body.user.username, 'dave');
    assert.equal(res.body.user.password_hash, undefined);
    assert.match(res.body.user.last_login_at, /^\d{4}-\d{2}-\d{2}T/);
    assert.equal(typeof res.body.csrf_token, 'string');
    assert.ok(res.body.csrf_token.length >= 20);
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`));
    assert.ok(cookie, 'sets the session cookie');
    assert.match(cookie, /;\s*httponly/i);
    assert.match(cookie, /;\s*samesite=lax/i);
    assert.match(cookie, /;\s*path=\/(;|$)/i);
    assert.match(cookie, /;\s*expires=/i);
    const row = await stack.db('users').where({ id: daveId }).first();
    assert.ok(row.last_login_at instanceof Date);
  });

  it('a wrong password, an unknown user and a disabled user all get the same 401', async () => {
    const wrong = await stack.request('POST', '/api/v1/auth/login', { body: { username: 'dave', password: 'not his secret' } });
    const unknown = await stack.request('POST', '/api/v1/auth/login', { body: { username: 'nobody', password: 'daves secret' } });
    assert.equal(wrong.status, 401);
    assert.equal(unknown.status, 401);
    assert.equal(wrong.body.error_code, 'UNAUTHORIZED');
    assert.equal(wrong.body.error, unknown.body.error);
    assert.equal(wrong.headers.getSetCookie().length, 0);

    const made = await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: { username: 'erin', email: 'erin@example.org', password: 'erins secret' } });
    await stack.request('PUT', `/api/v1/users/${made.body.id}`, { key: stack.adminKey, body: { enabled: false } });
    const disabled = await stack.request('POST', '/api/v1/auth/login', { body: { username: 'erin', password: 'erins secret' } });
    assert.equal(disabled.status, 401);
    assert.equal(disabled.body.error, wrong.body.error);
  });

  it('a login body without a password is a 400 naming body.password', async () => {
    const res = await stack.request('POST', '/api/v1/auth/login', { body: { username: 'dave' } });
    assert.equal(res.status, 400);
    assert.deepEqual(res.body.details[0], { field: 'body.password', message: 'is required' });
  });

  it('a session cookie reads /me without a CSRF header', async () => {
    const session = await signIn(stack, 'dave', 'daves secret');
    const me = await stack.request('GET', '/api/v1/me', { headers: sessionHeaders(session, false) });
    assert.equal(me.status, 200);
    assert.equal(me.body.id, daveId);
    assert.equal(me.body.username, 'dave');
    assert.equal(me.body.email, 'dave@example.org');
    assert.equal(me.body.user_type, 'local');
    assert.equal(me.body.password_hash, undefined);
  });

  it('a mutation with the cookie but without x-csrf-token is a 403 and changes nothing; with it, it succeeds', async () => {
    const session = await signIn(stack, 'dave', 'daves secret');
    const without = await stack.request('PUT', '/api/v1/me', { headers: sessionHeaders(session, false), body: { full_name: 'Sneaky' } });
    assert.equal(without.status, 403);
    assert.equal(without.body.error_code, 'FORBIDDEN');
    const wrongToken = await stack.request('PUT', '/api/v1/me', { headers: { cookie: session.cookie, 'x-csrf-token': 'x'.repeat(32) }, body: { full_name: 'Sneaky' } });
    assert.equal(wrongToken.status, 403);
    assert.equal((await stack.db('users').where({ id: daveId }).first()).full_name, 'Dave');
    const withToken = await stack.request('PUT', '/api/v1/me', { headers: sessionHeaders(session), body: { full_name: 'David', email: 'david@example.org' } });
    assert.equal(withToken.status, 200);
    assert.equal(withToken.body.full_name, 'David');
    assert.equal(withToken.body.email, 'david@example.org');
  });

  it('an admin user signed in by cookie may use admin routes (with the CSRF header)', async () => {
    const session = await signIn(stack, 'root', 'roots secret');
    const list = await stack.request('GET', '/api/v1/users', { headers: sessionHeaders(session, false) });
    assert.equal(list.status, 200);
    const news = await stack.request('POST', '/api/v1/news', { headers: sessionHeaders(session), body: { title: 'by root', content: 'hello' } });
    assert.equal(news.status, 201);
    assert.equal(news.body.created_by, 'root');
    const noCsrf = await stack.request('POST', '/api/v1/news', { headers: sessionHeaders(session, false), body: { title: 'x', content: 'y' } });
    assert.equal(noCsrf.status, 403);
  });

  it('PUT /me cannot change the role: 400 naming body.role', async () => {
    const session = await signIn(stack, 'dave', 'daves secret');
    const res = await stack.request('PUT', '/api/v1/me', { headers: sessionHeaders(session), body: { role: 'admin' } });
    assert.equal(res.status, 400);
    assert.equal(res.body.error_code, 'VALIDATION_ERROR');
    assert.equal(res.body.details[0].field, 'body.role');
    assert.equal((await stack.db('users').where({ id: daveId }).first()).role, 'read-only');
    const badEmail = await stack.request('PUT', '/api/v1/me', { headers: sessionHeaders(session), body: { email: 'nope' } });
    assert.equal(badEmail.status, 400);
    assert.equal(badEmail.body.details[0].field, 'body.email');
    const taken = await stack.request('PUT', '/api/v1/me', { headers: sessionHeaders(session), body: { email: 'root@example.org' } });
    assert.equal(taken.status, 409);
  });

  it('/me without credentials is a 401', async () => {
    assert.equal((await stack.request('GET', '/api/v1/me')).status, 401);
    assert.equal((await stack.request('PUT', '/api/v1/me', { body: { full_name: 'x' } })).status, 401);
    assert.equal((await stack.request('POST', '/api/v1/me/password', { body: { current_password: 'a', new_password: 'bbbbbbbb' } })).status, 401);
    assert.equal((await stack.request('GET', '/api/v1/me', { headers: { cookie: `${SESSION_COOKIE}=forged` } })).status, 401);
  });

  it('an API key without a user reads /me as a synthetic principal, and gets 403 changing it', async () => {
    const me = await stack.request('GET', '/api/v1/me', { key: readOnly });
    assert.equal(me.status, 200);
    assert.equal(me.body.username, 'test-read-only');
    assert.equal(me.body.user_type, 'api_key');
    assert.equal(me.body.role, 'read-only');
    assert.equal(me.body.email, null);
    assert.equal(me.body.full_name, null);
    assert.equal(me.body.last_login_at, null);
    assert.match(me.body.id, /^[0-9a-f-]{36}$/);
    const put = await stack.request('PUT', '/api/v1/me', { key: readOnly, body: { full_name: 'a key' } });
    assert.equal(put.status, 403);
    assert.equal(put.body.error_code, 'FORBIDDEN');
    const pw = await stack.request('POST', '/api/v1/me/password', { key: readOnly, body: { current_password: 'whatever', new_password: 'whatever2' } });
    assert.equal(pw.status, 403);
  });

  it('an API key owned by a user reads that user on /me', async () => {
    const owned = await createApiKey(stack.db, { name: 'daves-key', role: 'read-only', userId: daveId });
    const me = await stack.request('GET', '/api/v1/me', { key: owned.key });
    assert.equal(me.status, 200);
    assert.equal(me.body.id, daveId);
    assert.equal(me.body.username, 'dave');
  });

  it('a wrong current password is a 400 naming body.current_password; a short new one names body.new_password', async () => {
    const session = await signIn(stack, 'dave', 'daves secret');
    const wrong = await stack.request('POST', '/api/v1/me/password', { headers: sessionHeaders(session), body: { current_password: 'guess', new_password: 'something long' } });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.details[0].field, 'body.current_password');
    const short = await stack.request('POST', '/api/v1/me/password', { headers: sessionHeaders(session), body: { current_password: 'daves secret', new_password: 'short' } });
    assert.equal(short.status, 400);
    assert.equal(short.body.details[0].field, 'body.new_password');
    await signIn(stack, 'dave', 'daves secret');
  });

  it('changing the password answers 204: the new one signs in, the old one not, other sessions end and this one stays', async () => {
    const other = await signIn(stack, 'dave', 'daves secret');
    const current = await signIn(stack, 'dave', 'daves secret');
    const res = await stack.request('POST', '/api/v1/me/password', { headers: sessionHeaders(current), body: { current_password: 'daves secret', new_password: 'daves new secret' } });
    assert.equal(res.status, 204);
    assert.equal(res.text, '');
    assert.equal((await stack.request('GET', '/api/v1/me', { headers: sessionHeaders(current, false) })).status, 200);
    assert.equal((await stack.request('GET', '/api/v1/me', { headers: sessionHeaders(other, false) })).status, 401);
    assert.equal((await stack.request('POST', '/api/v1/auth/login', { body: { username: 'dave', password: 'daves secret' } })).status, 401);
    await signIn(stack, 'dave', 'daves new secret');
  });

  it('logout needs the CSRF header, then answers 204, clears the cookie and ends the session', async () => {
    const session = await signIn(stack, 'dave', 'daves new secret');
    const noCsrf = await stack.request('POST', '/api/v1/auth/logout', { headers: sessionHeaders(session, false) });
    assert.equal(noCsrf.status, 403);
    const res = await stack.request('POST', '/api/v1/auth/logout', { headers: sessionHeaders(session) });
    assert.equal(res.status, 204);
    const cleared = res.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`));
    assert.ok(cleared);
    assert.match(cleared, /expires=Thu, 01 Jan 1970/i);
    assert.equal((await stack.request('GET', '/api/v1/me', { headers: sessionHeaders(session, false) })).status, 401);
    assert.equal((await stack.request('POST', '/api/v1/auth/logout')).status, 401);
  });

  it('the audit rows of user creation, login and password change hold no password', async () => {
    const rows = await stack.db('audit_log');
    const login = rows.find((r) => r.action === 'POST /api/v1/auth/login');
    assert.ok(login);
    assert.equal(login.target_kind, 'user');
    assert.deepEqual(login.details, { username: 'dave' });
    assert.ok(rows.some((r) => r.action === 'POST /api/v1/users'));
    assert.ok(rows.some((r) => r.action === 'POST /api/v1/me/password'));
    const text = JSON.stringify(rows);
    for (const secret of ['daves secret', 'daves new secret', 'roots secret', 'erins secret']) assert.ok(!text.includes(secret), `audit holds ${secret}`);
  });
});
