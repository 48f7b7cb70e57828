import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { seedJobset, seedProject, type Row } from '../support/seed';
import { seedEvaluationWithBuilds } from '../support/channel-seed';

const at = (minutes: number) => new Date(Date.UTC(2026, 10, 1, 12, minutes));

describe('job badges and latest', () => {
  let stack: TestStack;
  let project: Row;
  let jobset: Row;
  let newestHello: Row;
  let job: (name: string, what: string) => string;

  before(async () => {
    stack = await startTestStack({ worker: false });
    project = await seedProject(stack.db);
    jobset = await seedJobset(stack.db, project.id);
    job = (name, what) => `/job/${project.name}/${jobset.name}/${name}/${what}`;
    // hello: failed, then succeeded, then a newer build still running. broken: failed twice. waiting: never finished.
    await seedEvaluationWithBuilds(stack.db, jobset.id, { hello: 'failed', broken: 'failed', 'tools.x': 'cancelled' }, { created_at: at(1) });
    const second = await seedEvaluationWithBuilds(stack.db, jobset.id, { hello: 'succeeded', broken: 'dependency_failed' }, { created_at: at(2) });
    newestHello = second.builds.hello;
    await seedEvaluationWithBuilds(stack.db, jobset.id, { hello: 'running', waiting: 'pending' }, { created_at: at(3) });
  });
  after(async () => stack?.stop());

  it('the badge of a job is an SVG of its newest finished build: passing, even while a newer build runs', async () => {
    const res = await stack.request('GET', job('hello', 'badge'));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/svg+xml');
    assert.match(res.text, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(res.text, /<title>build: passing<\/title>/);
    assert.match(res.text, /fill="#4c1"/);
  });

  it('a failed job reads failing, a cancelled one cancelled, one with no finished build yet pending', async () => {
    assert.match((await stack.request('GET', job('broken', 'badge'))).text, /<title>build: failing<\/title>/);
    assert.match((await stack.request('GET', job('tools.x', 'badge'))).text, /<title>build: cancelled<\/title>/);
    const waiting = await stack.request('GET', job('waiting', 'badge'));
    assert.equal(waiting.status, 200);
    assert.match(waiting.text, /<title>build: pending<\/title>/);
  });

  it('an unknown job, jobset or project gets an "unknown" badge with status 404', async () => {
    for (const p of [job('nope', 'badge'), `/job/${project.name}/nope/hello/badge`, `/job/nope/${jobset.name}/hello/badge`]) {
      const res = await stack.request('GET', p);
      assert.equal(res.status, 404, p);
      assert.equal(res.headers.get('content-type'), 'image/svg+xml');
      assert.match(res.text, /<title>build: unknown<\/title>/);
    }
  });

  it('badges are cacheable for a minute, with an ETag that a revalidation answers with a bodiless 304', async () => {
    const res = await stack.request('GET', job('hello', 'badge'));
    assert.equal(res.headers.get('cache-control'), 'public, max-age=60');
    const etag = res.headers.get('etag');
    assert.ok(etag);
    const again = await stack.request('GET', job('hello', 'badge'), { headers: { 'if-none-match': etag, 'cache-control': 'max-age=0' } });
    assert.equal(again.status, 304);
    assert.equal(again.text, '');
    const other = await stack.request('GET', job('broken', 'badge'), { headers: { 'if-none-match': etag, 'cache-control': 'max-age=0' } });
    assert.equal(other.status, 200, 'another status has another ETag');
  });

  it('the badge changes when a newer build finishes', async () => {
    await seedEvaluationWithBuilds(stack.db, jobset.id, { flips: 'succeeded' }, { created_at: at(4) });
    assert.match((await stack.request('GET', job('flips', 'badge'))).text, /passing/);
    await seedEvaluationWithBuilds(stack.db, jobset.id, { flips: 'failed' }, { created_at: at(5) });
    assert.match((await stack.request('GET', job('flips', 'badge'))).text, /failing/);
  });

  it('the shield is a flat-square SVG, or shields.io endpoint JSON when JSON is asked for', async () => {
    const svg = await stack.request('GET', job('hello', 'shield'));
    assert.equal(svg.status, 200);
    assert.equal(svg.headers.get('content-type'), 'image/svg+xml');
    assert.match(svg.text, /<title>build: passing<\/title>/);
    assert.doesNotMatch(svg.text, /rx="3"/);
    assert.equal(svg.headers.get('vary'), 'Accept');
    const json = await stack.request('GET', job('broken', 'shield'), { headers: { accept: 'application/json' } });
    assert.equal(json.status, 200);
    assert.deepEqual(json.body, { schemaVersion: 1, label: 'build', message: 'failing', color: 'red' });
    assert.equal(json.headers.get('cache-control'), 'public, max-age=60');
    const unknown = await stack.request('GET', job('nope', 'shield'), { headers: { accept: 'application/json' } });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error_code, 'NOT_FOUND');
    assert.equal((await stack.request('GET', job('nope', 'shield'))).status, 404);
  });

  it('latest redirects (302) to the API URL of the newest succeeded build of the job', async () => {
    const res = await stack.request('GET', job('hello', 'latest'));
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), `${stack.url}/api/v1/builds/${newestHello.id}`);
    const build = await stack.request('GET', new URL(res.headers.get('location')!).pathname);
    assert.equal(build.status, 200);
    assert.equal(build.body.status, 'succeeded');
  });

  it('latest is a 404 for a job that never succeeded and for an unknown job', async () => {
    for (const name of ['broken', 'waiting', 'nope']) {
      const res = await stack.request('GET', job(name, 'latest'));
      assert.equal(res.status, 404, name);
      assert.equal(res.body.error_code, 'NOT_FOUND');
    }
  });

  it('a malformed project or jobset name is a 400 naming it', async () => {
    const res = await stack.request('GET', `/job/bad%20name/${jobset.name}/hello/badge`);
    assert.equal(res.status, 400);
    assert.equal(res.body.details[0].field, 'params.project');
    const latest = await stack.request('GET', `/job/${project.name}/bad%20jobset/hello/latest`);
    assert.equal(latest.status, 400);
    assert.equal(latest.body.details[0].field, 'params.jobset');
  });
});
