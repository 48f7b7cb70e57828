import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { buildApp } from '../../api/app';
import { defineRoute, type RouteDef } from '../../api/route';
import { sendRaw as send } from '../support/raw-http';

describe('routing and body parsing (the route table on @koa/router)', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack({ worker: false });
  });
  after(async () => stack?.stop());

  it('a static segment outranks a parameter: /builds/recent lists recent builds instead of looking up a build "recent"', async () => {
    const res = await stack.request('GET', '/api/v1/builds/recent');
    assert.equal(res.status, 200, res.text);
    assert.ok(Array.isArray(res.body.items ?? res.body), res.text);
  });

  it('a request under /api/v1/ reaches its resource\'s routes as through one table: any case, a trailing slash, HEAD', async () => {
    for (const path of ['/API/V1/BUILDS/RECENT', '/api/v1/builds/recent/', '/Api/v1/Builds/recent']) {
      const res = await stack.request('GET', path);
      assert.equal(res.status, 200, `${path}: ${res.text}`);
      assert.ok(Array.isArray(res.body), `${path}: ${res.text}`);
    }
    assert.equal((await stack.request('HEAD', '/api/v1/builds/recent')).status, 200);
    const unknown = await stack.request('GET', '/api/v1/no-such-resource/recent');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error_code, 'NOT_FOUND');
    // Outside /api/v1/ too: the dashboard, /health and /nix-cache keep answering.
    assert.notEqual((await stack.request('GET', '/health')).status, 404);
    assert.equal((await stack.request('GET', '/nix-cache/nix-cache-info')).status, 200);
  });

  it('an unknown path is a 404 with the COMPAT error body', async () => {
    const res = await stack.request('GET', '/api/v1/no-such-thing');
    assert.equal(res.status, 404);
    assert.equal(res.body.error_code, 'NOT_FOUND');
    assert.match(res.body.error, /no route for GET \/api\/v1\/no-such-thing/);
  });

  it('a known path with a method it does not have is a 405 naming the allowed methods', async () => {
    const res = await stack.request('DELETE', '/api/v1/builds/recent', { key: stack.adminKey });
    assert.equal(res.status, 405);
    assert.equal(res.body.error_code, 'NOT_FOUND');
    assert.match(res.body.error, /method DELETE is not allowed/);
    assert.match(res.headers.get('allow') ?? '', /GET/);
  });

  it('HEAD answers like GET without a body', async () => {
    const res = await send(`${stack.url}/api/v1/projects`, 'HEAD', undefined);
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /json/);
    assert.equal(res.text, '');
  });

  it('a trailing slash finds the same route', async () => {
    const res = await stack.request('GET', '/api/v1/projects/');
    assert.equal(res.status, 200, res.text);
  });

  it('a JSON body without a Content-Type is parsed as JSON', async () => {
    const body = Buffer.from(JSON.stringify({ name: 'no-content-type', repository_url: 'file:///srv/repo' }));
    const res = await send(`${stack.url}/api/v1/projects`, 'POST', body, { authorization: `Bearer ${stack.adminKey}` });
    assert.equal(res.status, 200, res.text);
    assert.equal(JSON.parse(res.text).name, 'no-content-type');
  });

  it('a body over 10 MiB is a 413 naming the body, and nothing is created', async () => {
    const huge = Buffer.from(JSON.stringify({ name: 'huge', repository_url: 'file:///srv/repo', description: 'x'.repeat(10 * 1024 * 1024) }));
    const res = await send(`${stack.url}/api/v1/projects`, 'POST', huge, { authorization: `Bearer ${stack.adminKey}`, 'content-type': 'application/json' });
    assert.equal(res.status, 413);
    const error = JSON.parse(res.text);
    assert.equal(error.error_code, 'VALIDATION_ERROR');
    assert.deepEqual(error.details.map((d: { field: string }) => d.field), ['body']);
    assert.equal((await stack.request('GET', '/api/v1/projects?q=huge')).body.total, 0);
  });

  it('a JSON scalar where an object is wanted is a 400 naming the body', async () => {
    const res = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, rawBody: '"just a string"', headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.error_code, 'VALIDATION_ERROR');
    assert.equal(res.body.details[0].field, 'body');
  });

  it('a parameter that is not valid URL encoding is a 400 naming the parameter', async () => {
    const res = await stack.request('GET', '/api/v1/projects/%E0%A4%A');
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.details[0].field, 'params.id');
  });

  describe('a route table of its own', () => {
    let url: string;
    let server: http.Server;
    const seen: Array<{ raw: string; body: unknown }> = [];
    const routes: RouteDef[] = [
      // Registered before the static route on purpose: the static one still wins.
      defineRoute<{ id: string }>({
        method: 'GET',
        path: '/things/{id}',
        summary: 'a thing',
        tag: 'test',
        access: 'always-public',
        responses: { 200: { type: 'object' } },
        handler: async ({ params }) => ({ route: 'by id', id: params.id }),
      }),
      defineRoute({
        method: 'GET',
        path: '/things/recent',
        summary: 'recent things',
        tag: 'test',
        access: 'always-public',
        responses: { 200: { type: 'object' } },
        handler: async () => ({ route: 'recent' }),
      }),
      defineRoute<{ hash: string }>({
        method: 'GET',
        path: '/cache/{hash}.narinfo',
        summary: 'a parameter inside a segment',
        tag: 'test',
        access: 'always-public',
        responses: { 200: { type: 'object' } },
        handler: async ({ params }) => ({ hash: params.hash }),
      }),
      defineRoute<{ name: string }, {}, { event: string }>({
        method: 'POST',
        path: '/hooks/{name}',
        summary: 'a webhook that checks a signature over the exact bytes',
        tag: 'test',
        access: 'always-public',
        rawBody: true,
        body: { type: 'object', required: ['event'], properties: { event: { type: 'string' } } },
        responses: { 200: { type: 'object' } },
        handler: async ({ body }, rc) => {
          rc.audit = { action: 'none' };
          seen.push({ raw: (rc.koa.state as { rawBody: Buffer }).rawBody.toString('hex'), body });
          return { ok: true };
        },
      }),
    ];

    before(async () => {
      const { app } = buildApp({ db: stack.db, config: stack.config, temporal: undefined, startedAt: new Date(), version: 'test' }, routes);
      server = http.createServer(app.callback());
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });

    it('the route with fewer parameters answers, whatever the order of the table', async () => {
      assert.deepEqual(JSON.parse((await send(`${url}/things/recent`, 'GET', undefined)).text), { route: 'recent' });
      assert.deepEqual(JSON.parse((await send(`${url}/things/42`, 'GET', undefined)).text), { route: 'by id', id: '42' });
    });

    it('a parameter inside a segment ({hash}.narinfo) matches up to the literal suffix', async () => {
      assert.deepEqual(JSON.parse((await send(`${url}/cache/0c0ipk2jr8p8q.narinfo`, 'GET', undefined)).text), { hash: '0c0ipk2jr8p8q' });
      assert.equal((await send(`${url}/cache/0c0ipk2jr8p8q.nar`, 'GET', undefined)).status, 404);
    });

    it('a raw-body route gets the exact bytes that were sent, and the parsed, validated body', async () => {
      const bytes = Buffer.from('{ "event" :\t"push",\n  "note": "caf\u00e9 \u2603" }\r\n', 'utf8');
      const res = await send(`${url}/hooks/forge`, 'POST', bytes, { 'content-type': 'application/json' });
      assert.equal(res.status, 200, res.text);
      assert.equal(seen.at(-1)?.raw, bytes.toString('hex'));
      assert.deepEqual(seen.at(-1)?.body, { event: 'push', note: 'caf\u00e9 \u2603' });
    });

    it('a raw-body route still validates: a body without its required field is a 400 naming it', async () => {
      const before = seen.length;
      const res = await send(`${url}/hooks/forge`, 'POST', Buffer.from('{"note":"no event"}'), { 'content-type': 'application/json' });
      assert.equal(res.status, 400, res.text);
      assert.match(res.text, /event/);
      assert.equal(seen.length, before, 'the handler did not run');
    });
  });
});
