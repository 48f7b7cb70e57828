import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { buildApp } from '../../api/app';
import { defineRoute, type RouteDef } from '../../api/route';
import { notFound } from '../../api/errors';

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
        return { count: Number(n), run };
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

  async function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: { count: number; run: number } }> {
    const res = await fetch(`${url}${path}`, { headers });
    return { status: res.status, body: (await res.json()) as { count: number; run: number } };
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
    for (const a of answers) assert.deepEqual(a, { status: 200, body: { count: runs[0].count, run: 0 } });
    // Settled: the next read runs again (no cache).
    const later = get('/flight/news-count?tag=a');
    await runsStarted(2);
    runs[1].release();
    assert.equal((await later).body.run, 1);
  });

  it('read-your-writes: a read that arrives after a write completed starts its own flight and sees the write', async () => {
    runs.length = 0;
    const before = get('/flight/news-count?tag=ryw');
    await runsStarted(1);
    const countBefore = runs[0].count;
    // The write completes (its response received) while the first flight still holds its answer.
    const write = await fetch(`${url}/flight/news`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(write.status, 201);
    const after = get('/flight/news-count?tag=ryw');
    await runsStarted(2);
    assert.equal(runs[1].count, countBefore + 1, 'the second flight read after the write');
    runs[0].release();
    runs[1].release();
    assert.deepEqual((await before).body, { count: countBefore, run: 0 });
    assert.deepEqual((await after).body, { count: countBefore + 1, run: 1 }, 'not the flight that started before the write');
  });

  it('a different query string, or a request with credentials, never joins the flight', async () => {
    runs.length = 0;
    const first = get('/flight/news-count?tag=b');
    await runsStarted(1);
    const otherQuery = get('/flight/news-count?tag=c');
    await runsStarted(2);
    const withKey = get('/flight/news-count?tag=b', { authorization: `Bearer ${stack.adminKey}` });
    await runsStarted(3);
    for (const r of runs) r.release();
    assert.deepEqual((await first).body.run, 0);
    assert.deepEqual((await otherQuery).body.run, 1);
    assert.deepEqual((await withKey).body.run, 2);
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
