import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { fakeStorePath, seedBuild, seedEvaluation, seedJobset, seedProject, type Row } from '../support/seed';
import { BuildLogWriter } from '../../lib/build-log';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const BUILD_FIELDS = [
  'id', 'evaluation_id', 'job_name', 'drv_path', 'system', 'status', 'priority', 'outputs', 'build_output_path', 'log_path',
  'error_message', 'is_aggregate', 'constituents', 'retry_count', 'max_retries', 'builder_id', 'agent_machine_id', 'keep', 'signed',
  'is_fod', 'meta_description', 'meta_license', 'meta_homepage', 'meta_maintainers', 'required_features', 'closure_size',
  'created_at', 'started_at', 'completed_at', 'project_id', 'jobset_id', 'workflow_id',
];

/** Reads an SSE response until `event: end` (or the stream closes); returns the data text and whether it ended. */
async function readEvents(res: Response, onData?: (soFar: string) => void): Promise<{ data: string; ended: boolean }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let data = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return { data, ended: false };
    buffer += decoder.decode(value, { stream: true });
    let sep: number;
    while ((sep = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, sep);
      buffer = buffer.slice(sep + 2);
      const lines = event.split('\n');
      if (lines.includes('event: end')) {
        await reader.cancel();
        return { data, ended: true };
      }
      const dataLines = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice('data: '.length));
      if (dataLines.length > 0) {
        data += dataLines.join('\n');
        onData?.(data);
      }
    }
  }
}

describe('builds (reads)', () => {
  let stack: TestStack;
  let project: Row;
  let otherProject: Row;
  let jobset: Row;
  let evaluation: Row;
  let older: Row;
  let hello: Row;
  let lib: Row;
  let broken: Row;
  let aggregate: Row;
  let running: Row;
  let otherBuild: Row;

  before(async () => {
    stack = await startTestStack({ worker: false });
    const db = stack.db;
    project = await seedProject(db);
    otherProject = await seedProject(db);
    jobset = await seedJobset(db, project.id);
    const otherJobset = await seedJobset(db, otherProject.id);
    const t = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000);
    evaluation = await seedEvaluation(db, jobset.id);
    older = await seedBuild(db, { evaluation, job_name: 'older', status: 'succeeded', created_at: t(60), started_at: t(59), completed_at: t(1) });
    lib = await seedBuild(db, { evaluation, job_name: 'lib', status: 'succeeded', created_at: t(50), started_at: t(50), completed_at: t(45), system: 'aarch64-linux', closure_size: 123456789 });
    hello = await seedBuild(db, {
      evaluation, job_name: 'hello', status: 'succeeded', created_at: t(40), started_at: t(40), completed_at: t(30),
      outputs: { out: fakeStorePath('hello') }, meta_description: 'says hello', meta_license: 'MIT', required_features: ['kvm'],
    });
    broken = await seedBuild(db, { evaluation, job_name: 'broken', status: 'failed', created_at: t(30), error_message: 'builder failed with exit code 1' });
    running = await seedBuild(db, { evaluation, job_name: 'running', status: 'running', created_at: t(20), started_at: t(20) });
    aggregate = await seedBuild(db, { evaluation, job_name: 'all', status: 'pending', is_aggregate: true, created_at: t(10) });
    await db('aggregate_constituents').insert([
      { aggregate_build_id: aggregate.id, constituent_build_id: hello.id },
      { aggregate_build_id: aggregate.id, constituent_build_id: lib.id },
    ]);
    await db('build_dependencies').insert([
      { build_id: hello.id, dependency_build_id: lib.id },
      { build_id: broken.id, dependency_build_id: lib.id },
    ]);
    await db('build_outputs').insert({ build_id: lib.id, name: 'out', path: fakeStorePath('lib') });
    const otherEvaluation = await seedEvaluation(db, otherJobset.id);
    otherBuild = await seedBuild(db, { evaluation: otherEvaluation, job_name: 'hello', status: 'cancelled', created_at: t(5) });
  });
  after(async () => stack?.stop());

  it('GET /builds/{id} answers the circus Build fields', async () => {
    const res = await stack.request('GET', `/api/v1/builds/${hello.id}`);
    assert.equal(res.status, 200);
    for (const field of BUILD_FIELDS) assert.ok(field in res.body, `missing ${field}`);
    assert.equal(res.body.job_name, 'hello');
    assert.equal(res.body.project_id, project.id);
    assert.equal(res.body.jobset_id, jobset.id);
    assert.equal(res.body.status, 'succeeded');
    assert.equal(res.body.meta_description, 'says hello');
    assert.deepEqual(res.body.required_features, ['kvm']);
    assert.match(res.body.outputs.out, /^\/nix\/store\/[0-9a-z]{32}-hello$/);
    assert.deepEqual(res.body.constituents, []);
    assert.match(res.body.created_at, /^\d{4}-\d{2}-\d{2}T/);
    const withOutputRows = await stack.request('GET', `/api/v1/builds/${lib.id}`);
    assert.match(withOutputRows.body.outputs.out, /-lib$/, 'outputs include build_outputs rows');
    assert.equal(withOutputRows.body.closure_size, 123456789);
  });

  it('unknown builds are 404 on every route, bad ids 400', async () => {
    const unknown = crypto.randomUUID();
    for (const suffix of ['', '/steps', '/dependencies', '/dependents', '/constituents', '/log', '/log/stream', '/products']) {
      const res = await stack.request('GET', `/api/v1/builds/${unknown}${suffix}`);
      assert.equal(res.status, 404, suffix);
      assert.equal(res.body.error_code, 'NOT_FOUND');
    }
    const bad = await stack.request('GET', '/api/v1/builds/not-a-uuid');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.details[0].field, 'params.id');
  });

  it('the list is a page object, newest first, and filters by evaluation, status, system, job, project and jobset', async () => {
    const all = await stack.request('GET', '/api/v1/builds');
    assert.equal(all.status, 200);
    assert.equal(all.body.total, 7);
    assert.equal(all.body.limit, 50);
    assert.equal(all.body.offset, 0);
    assert.deepEqual(all.body.items.map((b: any) => b.job_name), ['hello', 'all', 'running', 'broken', 'hello', 'lib', 'older']);
    for (const field of BUILD_FIELDS) assert.ok(field in all.body.items[0], `missing ${field}`);
    const agg = all.body.items.find((b: any) => b.id === aggregate.id);
    assert.deepEqual([...agg.constituents].sort(), [hello.id, lib.id].sort());
    // The list is serialised by PostgreSQL, a single build by the API: every item answers the same JSON as its own route.
    for (const item of all.body.items) {
      const { workflow, ...single } = (await stack.request('GET', `/api/v1/builds/${item.id}`)).body;
      assert.deepEqual(item, single, `list item ${item.job_name}`);
    }

    const q = async (query: string) => (await stack.request('GET', `/api/v1/builds?${query}`)).body;
    assert.equal((await q(`evaluation_id=${evaluation.id}`)).total, 6);
    assert.deepEqual((await q('status=failed')).items.map((b: any) => b.id), [broken.id]);
    assert.deepEqual((await q('system=aarch64-linux')).items.map((b: any) => b.id), [lib.id]);
    assert.deepEqual((await q('job_name=hello')).items.map((b: any) => b.id), [otherBuild.id, hello.id]);
    assert.deepEqual((await q(`project_id=${otherProject.id}`)).items.map((b: any) => b.id), [otherBuild.id]);
    assert.equal((await q(`jobset_id=${jobset.id}&job_name=hello`)).total, 1);
    const page = await q('limit=2&offset=1');
    assert.equal(page.items.length, 2);
    assert.equal(page.total, 7);
    assert.deepEqual(page.items.map((b: any) => b.job_name), ['all', 'running']);

    // A cursor continues after a page's last build: the same builds in the same order as offsets, then null.
    const walked: string[] = [];
    let cursor: string | null = null;
    do {
      const next: any = await q(`limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      walked.push(...next.items.map((b: any) => b.id));
      cursor = next.next_cursor;
    } while (cursor);
    assert.deepEqual(walked, all.body.items.map((b: any) => b.id));
    assert.equal((await q('job_name=hello&limit=1')).next_cursor !== null, true);
    assert.equal((await q('job_name=hello&limit=5')).next_cursor, null);
    for (const bad of ['nope', Buffer.from('2026-01-01T00:00:00.000000Z|x').toString('base64url')]) {
      const res = await stack.request('GET', `/api/v1/builds?cursor=${bad}`);
      assert.equal(res.status, 400);
      assert.equal(res.body.details[0].field, 'query.cursor');
    }

    const badStatus = await stack.request('GET', '/api/v1/builds?status=exploded');
    assert.equal(badStatus.status, 400);
    assert.equal(badStatus.body.details[0].field, 'query.status');
    const badEval = await stack.request('GET', '/api/v1/builds?evaluation_id=nope');
    assert.equal(badEval.body.details[0].field, 'query.evaluation_id');
  });

  it('recent builds are a bare array, most recently completed (or created) first', async () => {
    const res = await stack.request('GET', '/api/v1/builds/recent?limit=3');
    assert.equal(res.status, 200);
    assert.ok(Array.isArray(res.body));
    assert.deepEqual(res.body.map((b: any) => b.id), [older.id, otherBuild.id, aggregate.id]);
    assert.equal((await stack.request('GET', '/api/v1/builds/recent')).body.length, 7);
  });

  it('stats count builds by status, with circus names too', async () => {
    const res = await stack.request('GET', '/api/v1/builds/stats');
    assert.equal(res.status, 200);
    const s = res.body;
    assert.equal(s.total, 7);
    assert.equal(s.by_status.succeeded, 3);
    assert.equal(s.by_status.failed, 1);
    assert.equal(s.by_status.cancelled, 1);
    assert.equal(s.by_status.oom_killed, 0);
    assert.equal(s.queue_depth, 1);
    assert.equal(s.running, 1);
    assert.equal(s.succeeded, 3);
    assert.equal(s.failed, 1);
    assert.equal(s.total_builds, 7);
    assert.equal(s.completed_builds, 3);
    assert.equal(s.failed_builds, 1);
    assert.equal(s.running_builds, 1);
    assert.equal(s.pending_builds, 1);
    assert.ok(s.avg_duration_seconds > 0);
  });

  it('dependencies, dependents and constituents are bare arrays of builds', async () => {
    const deps = await stack.request('GET', `/api/v1/builds/${hello.id}/dependencies`);
    assert.deepEqual(deps.body.map((b: any) => b.id), [lib.id]);
    const dependents = await stack.request('GET', `/api/v1/builds/${lib.id}/dependents`);
    assert.deepEqual(dependents.body.map((b: any) => b.job_name), ['broken', 'hello']);
    assert.deepEqual((await stack.request('GET', `/api/v1/builds/${older.id}/dependencies`)).body, []);
    const constituents = await stack.request('GET', `/api/v1/builds/${aggregate.id}/constituents`);
    assert.equal(constituents.status, 200);
    assert.deepEqual(constituents.body.map((b: any) => b.job_name), ['hello', 'lib']);
    for (const field of BUILD_FIELDS) assert.ok(field in constituents.body[0], `missing ${field}`);
  });

  it('constituents of a build that is not an aggregate is a 422 BUILD_ERROR', async () => {
    const res = await stack.request('GET', `/api/v1/builds/${hello.id}/constituents`);
    assert.equal(res.status, 422);
    assert.equal(res.body.error_code, 'BUILD_ERROR');
  });

  it('steps are a bare array in step order, with the BuildStep fields', async () => {
    await stack.db('build_steps').insert([
      { build_id: broken.id, step_number: 2, drv_path: broken.drv_path, status: 'failed', phase: 'building', exit_code: 1, error_message: 'boom', started_at: new Date(), completed_at: new Date() },
      { build_id: broken.id, step_number: 1, drv_path: lib.drv_path, status: 'succeeded', phase: 'done', exit_code: 0 },
    ]);
    const res = await stack.request('GET', `/api/v1/builds/${broken.id}/steps`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.map((s: any) => s.step_number), [1, 2]);
    for (const field of ['id', 'build_id', 'step_number', 'drv_path', 'builder_id', 'status', 'phase', 'started_at', 'completed_at', 'exit_code', 'error_message']) {
      assert.ok(field in res.body[1], `missing ${field}`);
    }
    assert.equal(res.body[1].exit_code, 1);
    assert.deepEqual((await stack.request('GET', `/api/v1/builds/${hello.id}/steps`)).body, []);
  });

  it('the log is text/plain, 404 before there is one', async () => {
    const none = await stack.request('GET', `/api/v1/builds/${older.id}/log`);
    assert.equal(none.status, 404);
    assert.equal(none.body.error_code, 'NOT_FOUND');
    const writer = await BuildLogWriter.open(stack.dataDir, older.id);
    await writer.append('building older\ndone\n');
    const live = await stack.request('GET', `/api/v1/builds/${older.id}/log`);
    assert.equal(live.status, 200);
    assert.match(live.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(live.text, 'building older\ndone\n');
    await writer.finish();
    const finished = await stack.request('GET', `/api/v1/builds/${older.id}/log`);
    assert.equal(finished.text, 'building older\ndone\n');
  });

  it('the log stream of a finished build sends the whole log, then event: end', async () => {
    const res = await fetch(`${stack.url}/api/v1/builds/${older.id}/log/stream`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    const { data, ended } = await readEvents(res);
    assert.ok(ended);
    assert.equal(data, 'building older\ndone\n');
  });

  it('the log stream follows a running build live, across the switch to .gz, until it ends', async () => {
    const writer = await BuildLogWriter.open(stack.dataDir, running.id);
    await writer.append('step 1\n');
    const res = await fetch(`${stack.url}/api/v1/builds/${running.id}/log/stream`);
    assert.equal(res.status, 200);
    // Each step waits for what the client has received, not for a span of time (under load a poll can take seconds).
    let received = '';
    const waiters: Array<() => void> = [];
    const until = (text: string) => new Promise<void>((resolve) => (received.includes(text) ? resolve() : waiters.push(() => received.includes(text) && resolve())));
    const reading = readEvents(res, (soFar) => {
      received = soFar;
      for (const w of waiters) w();
    });
    await until('step 1\n');
    await writer.append('step 2\n');
    // The build is still running: this line can only have come from following the live log.
    await until('step 2\n');
    await writer.append('step 3\n');
    await writer.finish();
    await stack.db('builds').where({ id: running.id }).update({ status: 'succeeded', completed_at: new Date() });
    const { data, ended } = await reading;
    assert.ok(ended);
    assert.equal(data, 'step 1\nstep 2\nstep 3\n');
  });

  it('a client that disconnects from the stream stops the server following', async () => {
    const controller = new AbortController();
    const res = await fetch(`${stack.url}/api/v1/builds/${aggregate.id}/log/stream`, { signal: controller.signal });
    assert.equal(res.status, 200);
    controller.abort();
    await sleep(200);
    // The server is still healthy and answers.
    assert.equal((await stack.request('GET', `/api/v1/builds/${aggregate.id}`)).status, 200);
  });

  describe('products', () => {
    let outputDir: string;
    let product: Row;
    let outsideProduct: Row;
    let symlinkProduct: Row;
    let dirProduct: Row;
    let foreignProduct: Row;
    let missingProduct: Row;

    before(async () => {
      // An output path of the build: a real directory (tests cannot write /nix/store).
      outputDir = path.join(stack.dataDir, 'store', `${crypto.randomBytes(4).toString('hex')}-hello`);
      fs.mkdirSync(path.join(outputDir, 'share', 'doc'), { recursive: true });
      fs.writeFileSync(path.join(outputDir, 'share', 'doc', 'manual.txt'), 'the manual\n');
      fs.writeFileSync(path.join(stack.dataDir, 'secret.txt'), 'not yours\n');
      fs.symlinkSync(path.join(stack.dataDir, 'secret.txt'), path.join(outputDir, 'escape'));
      await stack.db('builds').where({ id: hello.id }).update({ outputs: JSON.stringify({ out: outputDir }) });
      const insert = async (fields: Row) => (await stack.db('build_products').insert({ build_id: hello.id, ...fields }).returning('*'))[0];
      product = await insert({ name: 'manual.txt', path: path.join(outputDir, 'share', 'doc', 'manual.txt'), product_type: 'doc', subtype: 'manual', file_size: 11, content_type: 'text/plain', sha256_hash: 'abc' });
      outsideProduct = await insert({ name: 'secret', path: path.join(stack.dataDir, 'secret.txt') });
      symlinkProduct = await insert({ name: 'escape', path: path.join(outputDir, 'escape') });
      dirProduct = await insert({ name: 'doc', path: path.join(outputDir, 'share', 'doc'), is_directory: true });
      missingProduct = await insert({ name: 'gone', path: path.join(outputDir, 'gone.txt') });
      foreignProduct = (await stack.db('build_products').insert({ build_id: lib.id, name: 'lib.txt', path: path.join(outputDir, 'share', 'doc', 'manual.txt') }).returning('*'))[0];
    });

    it('lists products as a bare array with the BuildProduct fields', async () => {
      const res = await stack.request('GET', `/api/v1/builds/${hello.id}/products`);
      assert.equal(res.status, 200);
      assert.equal(res.body.length, 5);
      const manual = res.body.find((p: any) => p.id === product.id);
      for (const field of ['id', 'build_id', 'name', 'path', 'sha256_hash', 'file_size', 'content_type', 'is_directory', 'gc_root_path', 'created_at', 'product_type', 'subtype']) {
        assert.ok(field in manual, `missing ${field}`);
      }
      assert.equal(manual.file_size, 11);
      assert.equal(manual.subtype, 'manual');
    });

    it('downloads a product that lies inside an output', async () => {
      const res = await stack.request('GET', `/api/v1/builds/${hello.id}/products/${product.id}/download`);
      assert.equal(res.status, 200);
      assert.equal(res.text, 'the manual\n');
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
      assert.match(res.headers.get('content-disposition') ?? '', /attachment; filename="manual.txt"/);
    });

    it('refuses a product path outside the outputs, including through a symlink', async () => {
      const outside = await stack.request('GET', `/api/v1/builds/${hello.id}/products/${outsideProduct.id}/download`);
      assert.equal(outside.status, 403);
      assert.equal(outside.body.error_code, 'FORBIDDEN');
      assert.ok(!outside.text.includes('not yours'));
      const viaLink = await stack.request('GET', `/api/v1/builds/${hello.id}/products/${symlinkProduct.id}/download`);
      assert.equal(viaLink.status, 403);
      assert.ok(!viaLink.text.includes('not yours'));
    });

    it('a product of another build is 404, a directory 400, a missing file 404', async () => {
      const foreign = await stack.request('GET', `/api/v1/builds/${hello.id}/products/${foreignProduct.id}/download`);
      assert.equal(foreign.status, 404);
      const dir = await stack.request('GET', `/api/v1/builds/${hello.id}/products/${dirProduct.id}/download`);
      assert.equal(dir.status, 400);
      assert.equal(dir.body.details[0].field, 'params.product_id');
      const missing = await stack.request('GET', `/api/v1/builds/${hello.id}/products/${missingProduct.id}/download`);
      assert.equal(missing.status, 404);
      const unknown = await stack.request('GET', `/api/v1/builds/${hello.id}/products/${crypto.randomUUID()}/download`);
      assert.equal(unknown.status, 404);
    });
  });

  it('keep pins and unpins a build (admin only), and answers the Build', async () => {
    const readOnly = await stack.keyFor('read-only');
    assert.equal((await stack.request('PUT', `/api/v1/builds/${hello.id}/keep/true`)).status, 401);
    assert.equal((await stack.request('PUT', `/api/v1/builds/${hello.id}/keep/true`, { key: readOnly })).status, 403);
    const on = await stack.request('PUT', `/api/v1/builds/${hello.id}/keep/true`, { key: stack.adminKey });
    assert.equal(on.status, 200);
    assert.equal(on.body.keep, true);
    assert.equal(on.body.id, hello.id);
    for (const field of BUILD_FIELDS) assert.ok(field in on.body, `missing ${field}`);
    const off = await stack.request('PUT', `/api/v1/builds/${hello.id}/keep/0`, { key: stack.adminKey });
    assert.equal(off.body.keep, false);
    assert.equal((await stack.request('PUT', `/api/v1/builds/${hello.id}/keep/1`, { key: stack.adminKey })).body.keep, true);
    const bad = await stack.request('PUT', `/api/v1/builds/${hello.id}/keep/maybe`, { key: stack.adminKey });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.details[0].field, 'params.value');
    assert.equal((await stack.request('PUT', `/api/v1/builds/${crypto.randomUUID()}/keep/true`, { key: stack.adminKey })).status, 404);
    const audit = await stack.db('audit_log').where({ target_kind: 'build', target_id: hello.id });
    assert.equal(audit.length, 3);
  });

  it('a project’s builds are a bare array, newest first; an unknown project is 404', async () => {
    const res = await stack.request('GET', `/api/v1/projects/${project.id}/builds`);
    assert.equal(res.status, 200);
    assert.ok(Array.isArray(res.body));
    assert.equal(res.body.length, 6);
    assert.equal(res.body[0].id, aggregate.id);
    const paged = await stack.request('GET', `/api/v1/projects/${project.id}/builds?limit=2&offset=4`);
    assert.deepEqual(paged.body.map((b: any) => b.id), [lib.id, older.id]);
    assert.equal((await stack.request('GET', `/api/v1/projects/${crypto.randomUUID()}/builds`)).status, 404);
  });
});
