import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestStack, type TestStack } from '../support/stack';
import { seedJobset, seedProject, type Row } from '../support/seed';
import { seedEvaluationWithBuilds } from '../support/channel-seed';
import { autoPromoteAfterBuild } from '../../api/channel-promotion';
import { freePort, stopProcess, waitForPort } from '../../lib/processes';

const at = (minutes: number) => new Date(Date.UTC(2026, 10, 1, 12, minutes));

/** GET as raw bytes (the stack's request helper decodes text). */
async function fetchBytes(base: string, p: string, headers: Record<string, string> = {}): Promise<{ status: number; bytes: Buffer; headers: Headers }> {
  const res = await fetch(`${base}${p}`, { headers, redirect: 'manual' });
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

function unxz(bytes: Buffer): string {
  return execFileSync('xz', ['--decompress', '--stdout'], { input: bytes }).toString('utf8');
}

function untar(bytes: Buffer): { entries: string[]; files: Record<string, string> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-nixexprs-'));
  try {
    fs.writeFileSync(path.join(dir, 'nixexprs.tar.xz'), bytes);
    const entries = execFileSync('tar', ['-tJf', path.join(dir, 'nixexprs.tar.xz')], { encoding: 'utf8' }).trim().split('\n');
    execFileSync('tar', ['-xJf', path.join(dir, 'nixexprs.tar.xz'), '-C', dir]);
    const files: Record<string, string> = {};
    for (const e of entries) if (!e.endsWith('/')) files[e] = fs.readFileSync(path.join(dir, e), 'utf8');
    return { entries, files };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('channels', () => {
  let stack: TestStack;
  let readOnly: string;
  let project: Row;
  let jobset: Row;
  let otherJobset: Row;
  let otherProject: Row;
  // Evaluations of `jobset`, oldest first: two good ones, then one where `broken` failed but the aggregate `tested` succeeded.
  let first: Row;
  let second: Row;
  let mixed: Row;
  let foreign: Row;
  let channel: Row;

  before(async () => {
    stack = await startTestStack({ worker: false });
    readOnly = await stack.keyFor('read-only');
    project = await seedProject(stack.db);
    jobset = await seedJobset(stack.db, project.id);
    otherJobset = await seedJobset(stack.db, project.id);
    otherProject = await seedProject(stack.db);
    first = (await seedEvaluationWithBuilds(stack.db, jobset.id, { hello: 'succeeded', 'tools.x': 'succeeded' }, { created_at: at(1) })).evaluation;
    second = (await seedEvaluationWithBuilds(stack.db, jobset.id, { hello: 'succeeded', 'tools.x': 'succeeded' }, { created_at: at(2) })).evaluation;
    mixed = (await seedEvaluationWithBuilds(stack.db, jobset.id, { hello: 'succeeded', broken: 'failed', tested: { status: 'succeeded', isAggregate: true } }, { created_at: at(3) })).evaluation;
    foreign = (await seedEvaluationWithBuilds(stack.db, otherJobset.id, { hello: 'succeeded' }, { created_at: at(4) })).evaluation;
  });
  after(async () => stack?.stop());

  async function channelCount(): Promise<number> {
    const [{ n }] = await stack.db('channels').count<{ n: string }[]>('* as n');
    return Number(n);
  }

  it('an admin creates a channel on a jobset; it starts at the newest evaluation in which every build succeeded', async () => {
    const res = await stack.request('POST', '/api/v1/channels', { key: stack.adminKey, body: { project_id: project.id, name: 'demo-unstable', jobset_id: jobset.id } });
    assert.equal(res.status, 200, res.text);
    channel = res.body;
    assert.equal(channel.name, 'demo-unstable');
    assert.equal(channel.project_id, project.id);
    assert.equal(channel.jobset_id, jobset.id);
    assert.equal(channel.aggregate_job, null);
    // `mixed` is newer, but its `broken` build failed.
    assert.equal(channel.current_evaluation_id, second.id);
    for (const field of ['id', 'created_at', 'updated_at', 'promoted_at']) assert.ok(channel[field], field);
  });

  it('a channel gated on an aggregate job follows that job alone: other jobs may fail', async () => {
    const res = await stack.request('POST', '/api/v1/channels', { key: stack.adminKey, body: { project_id: project.id, name: 'demo-tested', jobset_id: jobset.id, aggregate_job: 'tested' } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.aggregate_job, 'tested');
    assert.equal(res.body.current_evaluation_id, mixed.id);
  });

  it('channels are listed as bare arrays, all of them and per project, and read one by one', async () => {
    const all = await stack.request('GET', '/api/v1/channels');
    assert.equal(all.status, 200);
    assert.deepEqual(all.body.map((c: Row) => c.name), ['demo-tested', 'demo-unstable']);
    const mine = await stack.request('GET', `/api/v1/projects/${project.id}/channels`);
    assert.deepEqual(mine.body.map((c: Row) => c.name), ['demo-tested', 'demo-unstable']);
    const none = await stack.request('GET', `/api/v1/projects/${otherProject.id}/channels`);
    assert.deepEqual(none.body, []);
    const one = await stack.request('GET', `/api/v1/channels/${channel.id}`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, channel);
  });

  it('reading an unknown channel or project is a 404, a malformed id a 400 naming it', async () => {
    const unknown = await stack.request('GET', '/api/v1/channels/00000000-0000-4000-8000-000000000000');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error_code, 'NOT_FOUND');
    assert.equal((await stack.request('GET', '/api/v1/projects/00000000-0000-4000-8000-000000000000/channels')).status, 404);
    const bad = await stack.request('GET', '/api/v1/channels/not-a-uuid');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.details[0].field, 'params.id');
    const badProject = await stack.request('GET', '/api/v1/projects/nope/channels');
    assert.equal(badProject.body.details[0].field, 'params.project_id');
  });

  it('bad input to create is a 4xx naming the field, and creates nothing', async () => {
    const before = await channelCount();
    const cases: Array<[unknown, number, string | undefined]> = [
      [{ project_id: project.id, jobset_id: jobset.id }, 400, 'body.name'],
      [{ project_id: project.id, name: 'has space', jobset_id: jobset.id }, 400, 'body.name'],
      [{ project_id: project.id, name: 'x', jobset_id: 'nope' }, 400, 'body.jobset_id'],
      [{ project_id: project.id, name: 'x', jobset_id: jobset.id, aggregate_job: '' }, 400, 'body.aggregate_job'],
      [{ project_id: project.id, name: 'x', jobset_id: jobset.id, colour: 'red' }, 400, 'body.colour'],
      [{ project_id: otherProject.id, name: 'x', jobset_id: jobset.id }, 400, 'body.jobset_id'],
      [{ project_id: '00000000-0000-4000-8000-000000000000', name: 'x', jobset_id: jobset.id }, 404, undefined],
      [{ project_id: project.id, name: 'x', jobset_id: '00000000-0000-4000-8000-000000000000' }, 404, undefined],
      [{ project_id: project.id, name: 'demo-unstable', jobset_id: jobset.id }, 409, undefined],
    ];
    for (const [body, status, field] of cases) {
      const res = await stack.request('POST', '/api/v1/channels', { key: stack.adminKey, body });
      assert.equal(res.status, status, `${JSON.stringify(body)}: ${res.text}`);
      if (field) assert.equal(res.body.details[0].field, field, JSON.stringify(body));
      assert.ok(res.body.error_code);
    }
    assert.equal((await stack.request('POST', '/api/v1/channels', { body: { project_id: project.id, name: 'y', jobset_id: jobset.id } })).status, 401);
    assert.equal((await stack.request('POST', '/api/v1/channels', { key: readOnly, body: { project_id: project.id, name: 'y', jobset_id: jobset.id } })).status, 403);
    assert.equal(await channelCount(), before);
  });

  it('promoting an evaluation of another jobset is refused with a 400 naming eval_id, and the channel stays', async () => {
    const res = await stack.request('POST', `/api/v1/channels/${channel.id}/promote/${foreign.id}`, { key: stack.adminKey });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.details[0].field, 'params.eval_id');
    assert.equal((await stack.request('GET', `/api/v1/channels/${channel.id}`)).body.current_evaluation_id, second.id);
  });

  it('a channel never goes back in time: promoting an older evaluation is a 409', async () => {
    const res = await stack.request('POST', `/api/v1/channels/${channel.id}/promote/${first.id}`, { key: stack.adminKey });
    assert.equal(res.status, 409, res.text);
    assert.equal(res.body.error_code, 'CONFLICT');
    assert.match(res.body.error, /never goes back in time/);
    assert.equal((await stack.request('GET', `/api/v1/channels/${channel.id}`)).body.current_evaluation_id, second.id);
  });

  it('promoting an evaluation that is not good by the channel\'s rule is a 409 saying why', async () => {
    const res = await stack.request('POST', `/api/v1/channels/${channel.id}/promote/${mixed.id}`, { key: stack.adminKey });
    assert.equal(res.status, 409, res.text);
    assert.match(res.body.error, /1 of its 3 builds did not succeed/);
  });

  it('promotion answers 404 for an unknown channel or evaluation, 400 for malformed ids, 401/403 without the admin role', async () => {
    const none = '00000000-0000-4000-8000-000000000000';
    assert.equal((await stack.request('POST', `/api/v1/channels/${none}/promote/${second.id}`, { key: stack.adminKey })).status, 404);
    assert.equal((await stack.request('POST', `/api/v1/channels/${channel.id}/promote/${none}`, { key: stack.adminKey })).status, 404);
    const bad = await stack.request('POST', `/api/v1/channels/${channel.id}/promote/42`, { key: stack.adminKey });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.details[0].field, 'params.eval_id');
    assert.equal((await stack.request('POST', `/api/v1/channels/${channel.id}/promote/${second.id}`)).status, 401);
    assert.equal((await stack.request('POST', `/api/v1/channels/${channel.id}/promote/${second.id}`, { key: readOnly })).status, 403);
  });

  it('an admin promotes a newer good evaluation; the audit log names the admin, the channel and both evaluations', async () => {
    const { evaluation: newer } = await seedEvaluationWithBuilds(stack.db, jobset.id, { hello: 'succeeded' }, { created_at: at(5) });
    const res = await stack.request('POST', `/api/v1/channels/${channel.id}/promote/${newer.id}`, { key: stack.adminKey });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.current_evaluation_id, newer.id);
    const entry = await stack.db('audit_log').where({ action: 'channel.promote', target_id: channel.id, actor_name: 'test-admin' }).orderBy('occurred_at', 'desc').first();
    assert.ok(entry, 'audit entry');
    assert.equal(entry.actor_kind, 'api_key');
    assert.deepEqual(entry.details, { channel: 'demo-unstable', evaluation_id: newer.id, previous_evaluation_id: second.id, automatic: false, changed: true });
    // Back to `second` is now going back in time.
    assert.equal((await stack.request('POST', `/api/v1/channels/${channel.id}/promote/${second.id}`, { key: stack.adminKey })).status, 409);
    channel = res.body;
    // The newly promoted evaluation's outputs are GC roots at once (not only after the next build).
    const promoted: Array<{ path: string }> = await stack.db('build_outputs as o').join('builds as b', 'b.id', 'o.build_id').where({ 'b.evaluation_id': newer.id }).select('o.path');
    assert.ok(promoted.length > 0);
    for (const { path: storePath } of promoted) {
      assert.equal(fs.readlinkSync(path.join(stack.config.gcRootsDir, path.basename(storePath))), storePath);
    }
  });

  it('when the last build of a newer evaluation succeeds, the channel moves by itself, audited as system', async () => {
    const { evaluation, builds } = await seedEvaluationWithBuilds(stack.db, jobset.id, { hello: 'succeeded', late: 'running' }, { created_at: at(6) });
    assert.deepEqual(await autoPromoteAfterBuild(stack.db, builds.hello.id), []); // `late` still runs
    assert.equal((await stack.request('GET', `/api/v1/channels/${channel.id}`)).body.current_evaluation_id, channel.current_evaluation_id);
    await stack.db('builds').where({ id: builds.late.id }).update({ status: 'succeeded', completed_at: stack.db.fn.now() });
    await stack.db('build_outputs').insert({ build_id: builds.late.id, name: 'out', path: '/nix/store/0000000000000000000000000000000l-late' });
    const results = await autoPromoteAfterBuild(stack.db, builds.late.id);
    assert.deepEqual(results.find((r) => r.channel === 'demo-unstable'), { channel: 'demo-unstable', promoted: true });
    assert.equal((await stack.request('GET', `/api/v1/channels/${channel.id}`)).body.current_evaluation_id, evaluation.id);
    const entry = await stack.db('audit_log').where({ action: 'channel.promote', target_id: channel.id, actor_kind: 'system' }).orderBy('occurred_at', 'desc').first();
    assert.equal(entry.actor_name, 'system');
    assert.deepEqual(entry.details, { channel: 'demo-unstable', evaluation_id: evaluation.id, previous_evaluation_id: channel.current_evaluation_id, automatic: true });
    channel = (await stack.request('GET', `/api/v1/channels/${channel.id}`)).body;
  });

  it('an older evaluation that finishes late does not move the channel back', async () => {
    const { builds } = await seedEvaluationWithBuilds(stack.db, jobset.id, { hello: 'succeeded' }, { created_at: at(0) });
    const results = await autoPromoteAfterBuild(stack.db, builds.hello.id);
    const mine = results.find((r) => r.channel === 'demo-unstable');
    assert.equal(mine?.promoted, false);
    assert.match(mine?.reason ?? '', /never goes back in time/);
    assert.equal((await stack.request('GET', `/api/v1/channels/${channel.id}`)).body.current_evaluation_id, channel.current_evaluation_id);
  });

  it('nixexprs.tar.xz holds channel/default.nix and .git-revision, the same bytes on every fetch and by name or id', async () => {
    const byId = await fetchBytes(stack.url, `/api/v1/channels/${channel.id}/nixexprs.tar.xz`);
    assert.equal(byId.status, 200);
    assert.equal(byId.headers.get('content-type'), 'application/x-xz');
    const again = await fetchBytes(stack.url, `/api/v1/channels/${channel.id}/nixexprs.tar.xz`);
    const byName = await fetchBytes(stack.url, '/channel/demo-unstable/nixexprs.tar.xz');
    assert.ok(byId.bytes.equals(again.bytes));
    assert.ok(byId.bytes.equals(byName.bytes));
    const { entries, files } = untar(byId.bytes);
    assert.deepEqual(entries, ['channel/', 'channel/.git-revision', 'channel/default.nix']);
    const evaluation = await stack.db('evaluations').where({ id: channel.current_evaluation_id }).first();
    assert.equal(files['channel/.git-revision'], evaluation.commit_hash);
    assert.match(files['channel/default.nix'], new RegExp(`evaluation ${evaluation.id}`));
    assert.match(files['channel/default.nix'], /"hello" = builtOutput/);
  });

  it('channel files carry an ETag and a short max-age, and a revalidation with the same ETag is a bodiless 304', async () => {
    const first = await fetchBytes(stack.url, '/channel/demo-unstable/nixexprs.tar.xz');
    const etag = first.headers.get('etag');
    assert.match(etag ?? '', /^"[A-Za-z0-9_-]+"$/);
    assert.equal(first.headers.get('cache-control'), 'public, max-age=60');
    // (fetch adds `Cache-Control: no-cache` to a conditional request unless told otherwise; a cache revalidating sends max-age=0)
    const revalidated = await fetchBytes(stack.url, '/channel/demo-unstable/nixexprs.tar.xz', { 'if-none-match': etag!, 'cache-control': 'max-age=0' });
    assert.equal(revalidated.status, 304);
    assert.equal(revalidated.bytes.length, 0);
    const head = await fetch(`${stack.url}/channel/demo-unstable/nixexprs.tar.xz`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers.get('content-length')), first.bytes.length);
  });

  it('when a build of the channel\'s evaluation changes (a restart that succeeds again), the files follow', async () => {
    const before = await fetchBytes(stack.url, '/channel/demo-unstable/store-paths.xz');
    const build = await stack.db('builds').where({ evaluation_id: channel.current_evaluation_id, job_name: 'hello' }).first();
    const rebuilt = '/nix/store/11111111111111111111111111111111-hello-rebuilt';
    await stack.db('build_outputs').where({ build_id: build.id }).update({ path: rebuilt });
    await stack.db('builds').where({ id: build.id }).update({ outputs: JSON.stringify({ out: rebuilt }), updated_at: stack.db.fn.now() });
    const after = await fetchBytes(stack.url, '/channel/demo-unstable/store-paths.xz');
    assert.notEqual(after.headers.get('etag'), before.headers.get('etag'));
    assert.match(unxz(after.bytes), /-hello-rebuilt\n/);
  });

  it('store-paths.xz lists the output paths of the succeeded jobs, sorted, one per line', async () => {
    const res = await fetchBytes(stack.url, '/channel/demo-unstable/store-paths.xz');
    assert.equal(res.status, 200);
    const outputs: Array<{ path: string }> = await stack.db('build_outputs as o').join('builds as b', 'b.id', 'o.build_id').where({ 'b.evaluation_id': channel.current_evaluation_id }).select('o.path');
    const expected = outputs.map((o) => o.path).sort();
    assert.equal(unxz(res.bytes), expected.map((p) => `${p}\n`).join(''));
  });

  it('git-revision is the commit of the channel\'s evaluation; binary-cache-url is this server\'s /nix-cache', async () => {
    const evaluation = await stack.db('evaluations').where({ id: channel.current_evaluation_id }).first();
    const rev = await stack.request('GET', '/channel/demo-unstable/git-revision');
    assert.equal(rev.status, 200);
    assert.equal(rev.text, evaluation.commit_hash);
    const cache = await stack.request('GET', '/channel/demo-unstable/binary-cache-url');
    assert.equal(cache.status, 200);
    assert.equal(cache.text, `${stack.url}/nix-cache`);
  });

  it('the channel URL itself answers (nix-channel --update fetches it first), naming its evaluation', async () => {
    const res = await stack.request('GET', '/channel/demo-unstable');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(res.text, new RegExp(`evaluation: ${channel.current_evaluation_id}`));
    assert.match(res.text, /nix-channel --add /);
  });

  it('an unknown channel name is a 404, a malformed one a 400, and a channel with nothing promoted has no files yet', async () => {
    for (const file of ['', '/nixexprs.tar.xz', '/store-paths.xz', '/git-revision', '/binary-cache-url']) {
      const res = await stack.request('GET', `/channel/no-such-channel${file}`);
      assert.equal(res.status, 404, file);
      assert.equal(res.body.error_code, 'NOT_FOUND');
    }
    const bad = await stack.request('GET', '/channel/bad%20name/git-revision');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.details[0].field, 'params.name');
    const empty = await stack.request('POST', '/api/v1/channels', { key: stack.adminKey, body: { project_id: otherProject.id, name: 'empty', jobset_id: (await seedJobset(stack.db, otherProject.id)).id } });
    assert.equal(empty.body.current_evaluation_id, null);
    assert.equal((await stack.request('GET', '/channel/empty')).status, 200);
    for (const file of ['/nixexprs.tar.xz', '/store-paths.xz', '/git-revision']) {
      const res = await stack.request('GET', `/channel/empty${file}`);
      assert.equal(res.status, 404, file);
      assert.match(res.body.error, /has no evaluation yet/);
    }
  });

  it('another API process regenerates the same nixexprs.tar.xz bytes, and names RINGMASTER_PUBLIC_URL as the binary cache', async () => {
    const before = await fetchBytes(stack.url, '/channel/demo-unstable/nixexprs.tar.xz');
    const port = await freePort();
    const log = path.join(stack.dataDir, 'second-api.log');
    const out = fs.openSync(log, 'a');
    let child: ChildProcess | undefined;
    try {
      child = spawn(process.execPath, [path.resolve(__dirname, '..', '..', 'bin', 'ringmaster.js'), 'api'], {
        env: {
          ...process.env,
          PORT: String(port),
          HOST: '127.0.0.1',
          DATABASE_URL: stack.databaseUrl,
          TEMPORAL_ADDRESS: stack.temporalAddress,
          RINGMASTER_TASK_QUEUE: stack.taskQueue,
          RINGMASTER_DATA_DIR: stack.dataDir,
          RINGMASTER_PUBLIC_URL: 'https://ci.example.org/',
        },
        stdio: ['ignore', out, out],
      });
      await waitForPort('127.0.0.1', port, 60_000, child);
      const base = `http://127.0.0.1:${port}`;
      const after = await fetchBytes(base, '/channel/demo-unstable/nixexprs.tar.xz');
      assert.equal(after.status, 200);
      assert.ok(after.bytes.equals(before.bytes), 'same bytes from another process');
      assert.equal(after.headers.get('etag'), before.headers.get('etag'));
      const cache = await fetch(`${base}/channel/demo-unstable/binary-cache-url`);
      assert.equal(await cache.text(), 'https://ci.example.org/nix-cache');
    } finally {
      fs.closeSync(out);
      if (child) await stopProcess(child);
    }
  });

  it('an admin deletes a channel: 204, then it is gone (404), and the deletion is audited', async () => {
    const res = await stack.request('DELETE', `/api/v1/channels/${channel.id}`, { key: stack.adminKey });
    assert.equal(res.status, 204);
    assert.equal(res.text, '');
    assert.equal((await stack.request('GET', `/api/v1/channels/${channel.id}`)).status, 404);
    assert.equal((await stack.request('GET', '/channel/demo-unstable/nixexprs.tar.xz')).status, 404);
    assert.equal((await stack.request('DELETE', `/api/v1/channels/${channel.id}`, { key: stack.adminKey })).status, 404);
    const entry = await stack.db('audit_log').where({ target_kind: 'channel', target_id: channel.id, action: 'DELETE /api/v1/channels/{id}' }).first();
    assert.deepEqual(entry?.details, { name: 'demo-unstable' });
  });
});
