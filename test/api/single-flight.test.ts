import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { buildApp } from '../../api/app';
import { defineRoute, type RouteDef } from '../../api/route';
import { notFound } from '../../api/errors';
import { visibilityClassOf } from '../../api/flight-key';
import { createApiKey } from '../../api/queries/api-keys';
import { createSession, SESSION_COOKIE } from '../../api/queries/sessions';
import { insertUser } from '../../api/queries/users';
import { writeEpochOf } from '../../api/single-flight';

/**
 * Coalesced reads (single-flight.ts) through the real app on the real database: a read whose flight is held open
 * by the test, writes through the app's own mutating route, and the answers each request gets.
 */
describe('single flight: concurrent identical reads share one run, never across a completed write', () => {
  let stack: TestStack;
  let server: http.Server;
  let url: string;
  /** Each run of the coalesced handler: the news count it read, and the gate that holds its answer back. */
  const runs: Array<{ count: number; release: () => void }> = [];
  let runStarted: () => void = () => {};
  /** Two read-only keys, and a signed-in user's session cookie. */
  const readerKeys: string[] = [];
  let sessionCookie = '';

  const routes: RouteDef[] = [
    defineRoute({
      method: 'GET',
      path: '/flight/news-count',
      summary: 'news count, answered when the test releases it',
      tag: 'test',
      access: 'public',
      coalesce: true,
      query: { type: 'object', properties: { tag: { type: 'string' }, fail: { type: 'string' } } },
      responses: { 200: { type: 'object' } },
      handler: async ({ query }, rc) => {
        // Read first, answer later: a flight that joined a later write would answer the older count.
        const [{ n }] = (await rc.db('news').count<{ n: string }[]>('* as n')) as Array<{ n: string }>;
        const run = runs.length;
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        runs.push({ count: Number(n), release });
        runStarted();
        await gate;
        if ((query as { fail?: string }).fail) throw notFound('thing', `run ${run}`);
        // What an administrator may see differs from what others may (as hidden evaluations do).
        return { count: Number(n), run, computedFor: visibilityClassOf(rc.principal) };
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/flight/news',
      summary: 'adds a news entry',
      tag: 'test',
      access: 'public',
      responses: { 201: { type: 'object' } },
      handler: async (_input, rc) => {
        rc.audit = { action: 'none' };
        await rc.db('news').insert({ title: 'flight', content: 'a write between two reads' });
        return { ok: true };
      },
    }),
  ];

  async function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: { count: number; run: number; computedFor: string }; setCookie: string[] }> {
    const res = await fetch(`${url}${path}`, { headers });
    return { status: res.status, body: (await res.json()) as { count: number; run: number; computedFor: string }, setCookie: res.headers.getSetCookie() };
  }

  /** Resolves when the coalesced handler has started its `n`th run (counting from 1); fails after 10 s, releasing every run. */
  async function runsStarted(n: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (runs.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) {
        for (const r of runs) r.release();
        assert.fail(`the handler ran ${runs.length} times, not ${n}: a request joined a flight it should not have`);
      }
      await new Promise<void>((resolve) => {
        runStarted = resolve;
        setTimeout(resolve, left);
      });
    }
  }

  /** Lets the request reach the route and join (or not) the flight: a few round trips of the event loop. */
  async function settle(): Promise<void> {
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  before(async () => {
    stack = await startTestStack({ worker: false });
    for (const i of [0, 1]) readerKeys.push((await createApiKey(stack.db, { name: `flight-reader-${i}`, role: 'read-only' })).key);
    const user = await insertUser(stack.db, { username: 'flight-user', email: 'flight@example.org', passwordHash: 'not a hash: this user signs in by session only', role: 'read-only' });
    sessionCookie = `${SESSION_COOKIE}=${(await createSession(stack.db, user.id)).token}`;
    const { app } = buildApp({ db: stack.db, config: stack.config, temporal: undefined, startedAt: new Date(), version: 'test' }, routes);
    server = http.createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server?.closeAllConnections();
    if (server) await new Promise((resolve) => server.close(resolve));
    await stack?.stop();
  });

  it('reads of the same path and query while one is in flight get its answer; the handler runs once', async () => {
    runs.length = 0;
    const first = get('/flight/news-count?tag=a');
    await runsStarted(1);
    const second = get('/flight/news-count?tag=a');
    const third = get('/flight/news-count?tag=a');
    await settle();
    assert.equal(runs.length, 1, 'the reads that arrived during the flight joined it');
    runs[0].release();
    const answers = await Promise.all([first, second, third]);
    for (const a of answers) assert.deepEqual(a, { status: 200, body: { count: runs[0].count, run: 0, computedFor: 'everyone' }, setCookie: [] });
    // Settled: the next read runs again (no cache).
    const later = get('/flight/news-count?tag=a');
    await runsStarted(2);
    runs[1].release();
    assert.equal((await later).body.run, 1);
  });

  for (const caller of ['anonymous', 'with an API key'] as const) {
    it(`read-your-writes (${caller}): a read that arrives after a write completed starts its own flight and sees the write`, async () => {
      runs.length = 0;
      const headers: Record<string, string> = caller === 'anonymous' ? {} : { authorization: `Bearer ${readerKeys[0]}` };
      const before = get('/flight/news-count?tag=ryw', headers);
      await runsStarted(1);
      const countBefore = runs[0].count;
      // The write completes (its response received) while the first flight still holds its answer.
      const write = await fetch(`${url}/flight/news`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: '{}' });
      assert.equal(write.status, 201);
      const after = get('/flight/news-count?tag=ryw', headers);
      await runsStarted(2);
      assert.equal(runs[1].count, countBefore + 1, 'the second flight read after the write');
      runs[0].release();
      runs[1].release();
      assert.deepEqual((await before).body, { count: countBefore, run: 0, computedFor: 'everyone' });
      assert.deepEqual((await after).body, { count: countBefore + 1, run: 1, computedFor: 'everyone' }, 'not the flight that started before the write');
    });
  }

  it('a different query string, or a request signed in by cookie, never joins the flight', async () => {
    runs.length = 0;
    const first = get('/flight/news-count?tag=b');
    await runsStarted(1);
    const otherQuery = get('/flight/news-count?tag=c');
    await runsStarted(2);
    const signedIn = get('/flight/news-count?tag=b', { cookie: sessionCookie });
    await runsStarted(3);
    for (const r of runs) r.release();
    assert.deepEqual((await first).body.run, 0);
    assert.deepEqual((await otherQuery).body.run, 1);
    assert.deepEqual((await signedIn).body.run, 2);
  });

  it('reads with API keys of one visibility class share a flight with anonymous ones; each key\'s use is still recorded', async () => {
    runs.length = 0;
    await stack.db('api_keys').update({ last_used_at: null });
    // Written behind the app's back: tell it, as a write through it would (api/credential-cache.ts).
    writeEpochOf(stack.db).bump();
    const first = get('/flight/news-count?tag=keys', { authorization: `Bearer ${readerKeys[0]}` });
    await runsStarted(1);
    const second = get('/flight/news-count?tag=keys', { authorization: `Bearer ${readerKeys[1]}` });
    const anonymous = get('/flight/news-count?tag=keys');
    await settle();
    assert.equal(runs.length, 1, 'the reads that arrived during the flight joined it');
    runs[0].release();
    for (const a of await Promise.all([first, second, anonymous])) {
      assert.deepEqual(a, { status: 200, body: { count: runs[0].count, run: 0, computedFor: 'everyone' }, setCookie: [] });
    }
    const used = await stack.db('api_keys').whereIn('name', ['flight-reader-0', 'flight-reader-1']).whereNotNull('last_used_at').count<{ n: string }[]>('* as n');
    assert.equal(Number(used[0].n), 2, 'both keys of the flight were marked used');
  });

  it('a keyed reader never gets an answer computed for an administrator, nor an administrator one computed for others', async () => {
    runs.length = 0;
    const admin = get('/flight/news-count?tag=classes', { authorization: `Bearer ${stack.adminKey}` });
    await runsStarted(1);
    const reader = get('/flight/news-count?tag=classes', { authorization: `Bearer ${readerKeys[0]}` });
    await runsStarted(2);
    const anonymous = get('/flight/news-count?tag=classes');
    const secondAdmin = get('/flight/news-count?tag=classes', { authorization: `Bearer ${stack.adminKey}` });
    await settle();
    assert.equal(runs.length, 2, 'one flight per visibility class');
    for (const r of runs) r.release();
    assert.deepEqual((await admin).body, { count: runs[0].count, run: 0, computedFor: 'admin' });
    assert.deepEqual((await secondAdmin).body, { count: runs[0].count, run: 0, computedFor: 'admin' });
    assert.deepEqual((await reader).body, { count: runs[1].count, run: 1, computedFor: 'everyone' });
    assert.deepEqual((await anonymous).body, { count: runs[1].count, run: 1, computedFor: 'everyone' });
  });

  it('a failure is every joined request\'s failure, and the next read runs again', async () => {
    runs.length = 0;
    const first = fetch(`${url}/flight/news-count?fail=yes`);
    await runsStarted(1);
    const second = fetch(`${url}/flight/news-count?fail=yes`);
    await settle();
    runs[0].release();
    for (const res of await Promise.all([first, second])) {
      assert.equal(res.status, 404);
      assert.deepEqual(await res.json(), { error: 'thing run 0 not found', error_code: 'NOT_FOUND' });
    }
    assert.equal(runs.length, 1);
    const again = fetch(`${url}/flight/news-count?fail=yes`);
    await runsStarted(2);
    runs[1].release();
    assert.equal((await again).status, 404);
  });
});
