import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { sessionHeaders, signIn } from '../support/session';
import { LAST_USED_RESOLUTION_SECONDS } from '../../api/queries/api-keys';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The API remembers whom a key or a session stands for (api/credential-cache.ts). This stack remembers for ten
 * minutes, so whatever a test sees at once comes from the write epoch, never from the entry having expired.
 */
describe('remembered credentials: never past a write of this process', () => {
  let stack: TestStack;
  let adminKey: string;

  /** Statements on api_keys or sessions while `run` runs. */
  async function lookupsDuring(run: () => Promise<void>): Promise<number> {
    let n = 0;
    const listener = (q: { sql: string }) => {
      if (/\b(api_keys|sessions)\b/.test(q.sql)) n++;
    };
    stack.db.on('query', listener);
    try {
      await run();
    } finally {
      stack.db.removeListener('query', listener);
    }
    return n;
  }

  async function newUser(username: string, role = 'read-only'): Promise<string> {
    const made = await stack.request('POST', '/api/v1/users', { key: adminKey, body: { username, email: `${username}@example.org`, password: `${username} secret`, role } });
    assert.equal(made.status, 200, made.text);
    return made.body.id;
  }

  before(async () => {
    stack = await startTestStack({ worker: false, env: { RINGMASTER_AUTH_CACHE_MS: String(600_000) } });
    adminKey = stack.adminKey;
  });
  after(async () => stack?.stop());

  it('a key used again and again is looked up once', async () => {
    const key = await stack.keyFor('read-only');
    assert.equal((await stack.request('GET', '/api/v1/me', { key })).status, 200);
    const lookups = await lookupsDuring(async () => {
      for (let i = 0; i < 5; i++) assert.equal((await stack.request('GET', '/api/v1/news', { key })).status, 200);
    });
    assert.equal(lookups, 0, 'the five requests after the first read no key');
  });

  it('a key revoked through the API is refused by the very next request', async () => {
    const created = (await stack.request('POST', '/api/v1/api-keys', { key: adminKey, body: { name: 'soon-revoked', role: 'admin' } })).body;
    for (let i = 0; i < 3; i++) assert.equal((await stack.request('GET', '/api/v1/api-keys', { key: created.key })).status, 200);
    assert.equal((await stack.request('DELETE', `/api/v1/api-keys/${created.id}`, { key: adminKey })).status, 204);
    const refused = await stack.request('GET', '/api/v1/api-keys', { key: created.key });
    assert.equal(refused.status, 401, refused.text);
  });

  it('a role changed through the API applies to the next request of a signed-in user, both ways', async () => {
    const id = await newUser('promoted');
    const session = await signIn(stack, 'promoted', 'promoted secret');
    assert.equal((await stack.request('GET', '/api/v1/users', { headers: sessionHeaders(session) })).status, 403);
    assert.equal((await stack.request('PUT', `/api/v1/users/${id}`, { key: adminKey, body: { role: 'admin' } })).status, 200);
    assert.equal((await stack.request('GET', '/api/v1/users', { headers: sessionHeaders(session) })).status, 200);
    assert.equal((await stack.request('PUT', `/api/v1/users/${id}`, { key: adminKey, body: { role: 'read-only' } })).status, 200);
    const demoted = await stack.request('GET', '/api/v1/users', { headers: sessionHeaders(session) });
    assert.equal(demoted.status, 403, demoted.text);
    const me = await stack.request('GET', '/api/v1/me', { headers: sessionHeaders(session) });
    assert.equal(me.body.role, 'read-only');
  });

  it('a user disabled through the API, or a session signed out, is refused by the next request', async () => {
    const id = await newUser('disabled-soon');
    const session = await signIn(stack, 'disabled-soon', 'disabled-soon secret');
    assert.equal((await stack.request('GET', '/api/v1/me', { headers: sessionHeaders(session) })).status, 200);
    assert.equal((await stack.request('PUT', `/api/v1/users/${id}`, { key: adminKey, body: { enabled: false } })).status, 200);
    assert.equal((await stack.request('GET', '/api/v1/me', { headers: sessionHeaders(session) })).status, 401);

    await newUser('signs-out');
    const leaving = await signIn(stack, 'signs-out', 'signs-out secret');
    assert.equal((await stack.request('GET', '/api/v1/me', { headers: sessionHeaders(leaving) })).status, 200);
    assert.equal((await stack.request('POST', '/api/v1/auth/logout', { headers: sessionHeaders(leaving) })).status, 204);
    assert.equal((await stack.request('GET', '/api/v1/me', { headers: sessionHeaders(leaving) })).status, 401);
  });

  it('a remembered key is still marked used once a minute, and a remembered session ends at its expiry', async () => {
    const created = (await stack.request('POST', '/api/v1/api-keys', { key: adminKey, body: { name: 'almost-a-minute' } })).body;
    // Used 55 s ago: this use is not recorded (within the minute), and the row is remembered with that time.
    await stack.db('api_keys').where({ id: created.id }).update({ last_used_at: stack.db.raw(`now() - make_interval(secs => ?)`, [LAST_USED_RESOLUTION_SECONDS - 5]) });
    assert.equal((await stack.request('GET', '/api/v1/me', { key: created.key })).status, 200);
    const remembered = (await stack.db('api_keys').where({ id: created.id }).first()).last_used_at as Date;
    await sleep(Math.max(0, remembered.getTime() + LAST_USED_RESOLUTION_SECONDS * 1000 - Date.now()) + 50);
    assert.equal((await stack.request('GET', '/api/v1/me', { key: created.key })).status, 200);
    const recorded = (await stack.db('api_keys').where({ id: created.id }).first()).last_used_at as Date;
    assert.ok(recorded.getTime() > remembered.getTime() + LAST_USED_RESOLUTION_SECONDS * 1000 - 1000, `recorded anew: ${remembered.toISOString()} → ${recorded.toISOString()}`);

    const id = await newUser('short-session');
    const session = await signIn(stack, 'short-session', 'short-session secret');
    // A session that ends in five seconds, before anything remembered it.
    const expiresAt = new Date(Date.now() + 5000);
    await stack.db('sessions').where({ user_id: id }).update({ expires_at: expiresAt });
    assert.equal((await stack.request('GET', '/api/v1/me', { headers: sessionHeaders(session) })).status, 200);
    await sleep(Math.max(0, expiresAt.getTime() - Date.now()) + 50);
    assert.equal((await stack.request('GET', '/api/v1/me', { headers: sessionHeaders(session) })).status, 401);
  });
});
