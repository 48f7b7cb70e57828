import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { signIn } from '../support/session';

const USER_FIELDS = ['id', 'username', 'email', 'full_name', 'user_type', 'role', 'enabled', 'created_at', 'updated_at', 'last_login_at'];

describe('users', () => {
  let stack: TestStack;
  let readOnly: string;
  before(async () => {
    stack = await startTestStack({ worker: false });
    readOnly = await stack.keyFor('read-only');
  });
  after(async () => stack?.stop());

  const alice = { username: 'alice', email: 'alice@example.org', password: 'correct horse', full_name: 'Alice A.', role: 'cancel-build' };

  it('an admin creates a user, answered with the User fields and never a password hash', async () => {
    const res = await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: alice });
    assert.equal(res.status, 200);
    for (const field of USER_FIELDS) assert.ok(field in res.body, `missing ${field}`);
    assert.equal(res.body.username, 'alice');
    assert.equal(res.body.email, 'alice@example.org');
    assert.equal(res.body.full_name, 'Alice A.');
    assert.equal(res.body.role, 'cancel-build');
    assert.equal(res.body.user_type, 'local');
    assert.equal(res.body.enabled, true);
    assert.equal(res.body.last_login_at, null);
    assert.equal(res.body.password_hash, undefined);
    assert.equal(res.body.password, undefined);
    const row = await stack.db('users').where({ id: res.body.id }).first();
    assert.match(row.password_hash, /^\$argon2id\$/);
    assert.ok(!row.password_hash.includes(alice.password));
  });

  it('role defaults to read-only and full_name to null', async () => {
    const res = await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: { username: 'bob', email: 'bob@example.org', password: 'bobs password' } });
    assert.equal(res.status, 200);
    assert.equal(res.body.role, 'read-only');
    assert.equal(res.body.full_name, null);
  });

  it('a password shorter than 8 characters is a 400 naming body.password, and no user is made', async () => {
    const res = await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: { username: 'shorty', email: 'short@example.org', password: 'seven77' } });
    assert.equal(res.status, 400);
    assert.equal(res.body.error_code, 'VALIDATION_ERROR');
    assert.equal(res.body.details[0].field, 'body.password');
    assert.equal(await stack.db('users').where({ username: 'shorty' }).first(), undefined);
  });

  it('other bad input is a 400 naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ email: 'x@example.org', password: 'long enough' }, 'body.username'],
      [{ username: 'carol', password: 'long enough' }, 'body.email'],
      [{ username: 'carol', email: 'not-an-email', password: 'long enough' }, 'body.email'],
      [{ username: 'carol', email: 'c@example.org', password: 'long enough', role: 'root' }, 'body.role'],
      [{ username: 'carol', email: 'c@example.org', password: 'long enough', password_hash: 'x' }, 'body.password_hash'],
      [{ username: 'has space', email: 'c@example.org', password: 'long enough' }, 'body.username'],
    ];
    for (const [body, field] of cases) {
      const res = await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.details[0].field, field, JSON.stringify(body));
    }
  });

  it('a duplicate username or email is a 409', async () => {
    const sameName = await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: { ...alice, email: 'other@example.org' } });
    assert.equal(sameName.status, 409);
    assert.equal(sameName.body.error_code, 'CONFLICT');
    const sameEmail = await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: { ...alice, username: 'alice2' } });
    assert.equal(sameEmail.status, 409);
  });

  it('the list is a bare array of users without password hashes; get answers one user', async () => {
    const list = await stack.request('GET', '/api/v1/users', { key: stack.adminKey });
    assert.equal(list.status, 200);
    assert.ok(Array.isArray(list.body));
    assert.deepEqual(list.body.map((u: { username: string }) => u.username), ['alice', 'bob']);
    assert.ok(!list.text.includes('password'));
    const one = await stack.request('GET', `/api/v1/users/${list.body[0].id}`, { key: stack.adminKey });
    assert.equal(one.status, 200);
    assert.equal(one.body.username, 'alice');
    assert.ok(!one.text.includes('password'));
  });

  it('an admin updates a user; a duplicate email on update is a 409 and an empty body a 400', async () => {
    const bob = (await stack.request('GET', '/api/v1/users', { key: stack.adminKey })).body.find((u: { username: string }) => u.username === 'bob');
    const res = await stack.request('PUT', `/api/v1/users/${bob.id}`, { key: stack.adminKey, body: { full_name: 'Robert', role: 'restart-jobs', enabled: false } });
    assert.equal(res.status, 200);
    assert.equal(res.body.full_name, 'Robert');
    assert.equal(res.body.role, 'restart-jobs');
    assert.equal(res.body.enabled, false);
    assert.ok(new Date(res.body.updated_at) >= new Date(bob.updated_at));
    const dup = await stack.request('PUT', `/api/v1/users/${bob.id}`, { key: stack.adminKey, body: { email: 'alice@example.org' } });
    assert.equal(dup.status, 409);
    const empty = await stack.request('PUT', `/api/v1/users/${bob.id}`, { key: stack.adminKey, body: {} });
    assert.equal(empty.status, 400);
    const short = await stack.request('PUT', `/api/v1/users/${bob.id}`, { key: stack.adminKey, body: { password: 'short' } });
    assert.equal(short.status, 400);
    assert.equal(short.body.details[0].field, 'body.password');
  });

  it('an admin sets a new password: the old one stops working, the new one signs in, old sessions end', async () => {
    const alice1 = await signIn(stack, 'alice', alice.password);
    const id = alice1.login.body.user.id;
    const res = await stack.request('PUT', `/api/v1/users/${id}`, { key: stack.adminKey, body: { password: 'a brand new one' } });
    assert.equal(res.status, 200);
    assert.equal((await stack.request('GET', '/api/v1/me', { headers: { cookie: alice1.cookie } })).status, 401);
    assert.equal((await stack.request('POST', '/api/v1/auth/login', { body: { username: 'alice', password: alice.password } })).status, 401);
    await signIn(stack, 'alice', 'a brand new one');
    await stack.request('PUT', `/api/v1/users/${id}`, { key: stack.adminKey, body: { password: alice.password } });
  });

  it('unknown ids are 404 for get, update and delete; malformed ids 400', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    assert.equal((await stack.request('GET', `/api/v1/users/${unknown}`, { key: stack.adminKey })).status, 404);
    const put = await stack.request('PUT', `/api/v1/users/${unknown}`, { key: stack.adminKey, body: { full_name: 'x' } });
    assert.equal(put.status, 404);
    assert.equal(put.body.error_code, 'NOT_FOUND');
    assert.equal((await stack.request('DELETE', `/api/v1/users/${unknown}`, { key: stack.adminKey })).status, 404);
    const bad = await stack.request('GET', '/api/v1/users/42', { key: stack.adminKey });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.details[0].field, 'params.id');
  });

  it('without credentials the user routes are 401', async () => {
    const someId = (await stack.request('GET', '/api/v1/users', { key: stack.adminKey })).body[0].id;
    assert.equal((await stack.request('GET', '/api/v1/users')).status, 401);
    assert.equal((await stack.request('POST', '/api/v1/users', { body: alice })).status, 401);
    assert.equal((await stack.request('GET', `/api/v1/users/${someId}`)).status, 401);
    assert.equal((await stack.request('PUT', `/api/v1/users/${someId}`, { body: { role: 'admin' } })).status, 401);
    assert.equal((await stack.request('DELETE', `/api/v1/users/${someId}`)).status, 401);
  });

  it('a read-only key and a non-admin user session get 403', async () => {
    const someId = (await stack.request('GET', '/api/v1/users', { key: stack.adminKey })).body[0].id;
    for (const [method, path, body] of [
      ['GET', '/api/v1/users', undefined],
      ['POST', '/api/v1/users', { username: 'mallory', email: 'm@example.org', password: 'long enough' }],
      ['GET', `/api/v1/users/${someId}`, undefined],
      ['PUT', `/api/v1/users/${someId}`, { role: 'admin' }],
      ['DELETE', `/api/v1/users/${someId}`, undefined],
    ] as const) {
      const res = await stack.request(method, path, { key: readOnly, body });
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.equal(res.body.error_code, 'FORBIDDEN');
    }
    const session = await signIn(stack, 'alice', alice.password);
    const promote = await stack.request('PUT', `/api/v1/users/${session.login.body.user.id}`, { headers: { cookie: session.cookie, 'x-csrf-token': session.csrfToken }, body: { role: 'admin' } });
    assert.equal(promote.status, 403);
    assert.equal((await stack.db('users').where({ username: 'alice' }).first()).role, 'cancel-build');
  });

  it('an admin deletes a user (204); the user is gone and can no longer sign in', async () => {
    const created = (await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: { username: 'temp', email: 'temp@example.org', password: 'temporary!' } })).body;
    const session = await signIn(stack, 'temp', 'temporary!');
    const del = await stack.request('DELETE', `/api/v1/users/${created.id}`, { key: stack.adminKey });
    assert.equal(del.status, 204);
    assert.equal(del.text, '');
    assert.equal((await stack.request('GET', `/api/v1/users/${created.id}`, { key: stack.adminKey })).status, 404);
    assert.equal((await stack.request('GET', '/api/v1/me', { headers: { cookie: session.cookie } })).status, 401);
    assert.equal((await stack.request('POST', '/api/v1/auth/login', { body: { username: 'temp', password: 'temporary!' } })).status, 401);
  });

  it('the audit rows of user creation and update hold no password', async () => {
    const rows = await stack.db('audit_log').where({ target_kind: 'user' });
    const create = rows.find((r) => r.action === 'POST /api/v1/users');
    assert.ok(create);
    assert.equal(create.details.username, 'alice');
    assert.equal(create.details.password, undefined);
    const text = JSON.stringify(rows);
    for (const secret of [alice.password, 'bobs password', 'a brand new one', 'temporary!']) assert.ok(!text.includes(secret), `audit holds ${secret}`);
    assert.ok(!text.includes('$argon2') && !text.includes('$scrypt'));
  });
});
