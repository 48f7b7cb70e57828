import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type ApiResponse, type TestStack } from '../support/stack';

/** Asks until `done` holds for the answer (a worker's first poll takes a moment to register), or gives up. */
async function eventually(ask: () => Promise<ApiResponse>, done: (r: ApiResponse) => boolean, timeoutMs = 20_000): Promise<ApiResponse> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await ask();
    if (done(r) || Date.now() > deadline) return r;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('with a worker polling', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack({ worker: true });
  });
  after(async () => stack?.stop());

  it('/health answers 200 with database, temporal and worker ok', async () => {
    const res = await eventually(() => stack.request('GET', '/health'), (r) => r.status === 200);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'ok');
    assert.equal(res.body.database.status, 'ok');
    assert.equal(res.body.temporal.status, 'ok');
    assert.equal(res.body.worker.status, 'ok');
    assert.deepEqual(res.body.down, []);
    assert.equal(typeof res.body.uptime_seconds, 'number');
  });

  it('GET /api/v1/admin/system with an admin key reports version, uptime, counts, database and a Temporal workflow round trip', async () => {
    const created = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body: { name: 'system-counted', repository_url: 'file:///srv/repo' } });
    assert.equal(created.status, 200);
    const res = await stack.request('GET', '/api/v1/admin/system', { key: stack.adminKey });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const body = res.body;
    assert.equal(body.version, 'test');
    assert.equal(typeof body.uptime, 'number');
    assert.ok(body.uptime >= 0);
    assert.match(body.node_version, /^v\d+\./);
    assert.equal(body.projects_count, 1);
    for (const count of ['jobsets_count', 'evaluations_count', 'builds_pending', 'builds_running', 'builds_completed', 'builds_failed', 'channels_count', 'queue_depth', 'active_builds']) {
      assert.equal(body[count], 0, count);
    }
    assert.equal(body.database.status, 'ok');
    assert.match(body.database.version, /^\d+/);
    assert.equal(body.temporal.status, 'ok');
    assert.equal(body.temporal.task_queue, stack.taskQueue);
    const roundTrip = body.temporal.workflow_round_trip;
    assert.equal(roundTrip.status, 'ok', JSON.stringify(roundTrip));
    assert.equal(typeof roundTrip.round_trip_ms, 'number');
    assert.ok(roundTrip.round_trip_ms >= 0);
    assert.equal(typeof roundTrip.worker_host, 'string');
    assert.equal(body.worker.status, 'ok');
  });

  it('GET /api/v1/admin/system without a key is 401', async () => {
    const res = await stack.request('GET', '/api/v1/admin/system');
    assert.equal(res.status, 401);
    assert.equal(res.body.error_code, 'UNAUTHORIZED');
  });

  it('GET /api/v1/admin/system with a read-only key is 403', async () => {
    const res = await stack.request('GET', '/api/v1/admin/system', { key: await stack.keyFor('read-only') });
    assert.equal(res.status, 403);
    assert.equal(res.body.error_code, 'FORBIDDEN');
  });

  it('/prometheus exposes process metrics and the request histogram labelled by route template', async () => {
    const id = crypto.randomUUID();
    assert.equal((await stack.request('GET', `/api/v1/projects/${id}`)).status, 404);
    assert.equal((await stack.request('GET', `/api/v1/projects/${crypto.randomUUID()}`)).status, 404);
    assert.equal((await stack.request('GET', '/api/v1/projects')).status, 200);
    const res = await stack.request('GET', '/prometheus');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = res.text;
    assert.match(text, /^ringmaster_process_cpu_user_seconds_total \d/m);
    assert.match(text, /^ringmaster_process_resident_memory_bytes \d/m);
    assert.match(text, /^ringmaster_nodejs_heap_size_used_bytes \d/m);
    assert.match(text, /^# TYPE ringmaster_http_request_duration_seconds histogram$/m);
    const countLine = (route: string, status: string) =>
      text.split('\n').find((l) => l.startsWith('ringmaster_http_request_duration_seconds_count{') && l.includes(`route="${route}"`) && l.includes(`status="${status}"`) && l.includes('method="GET"'));
    const byTemplate = countLine('/api/v1/projects/{id}', '404');
    assert.ok(byTemplate, 'a count for the route template /api/v1/projects/{id}');
    assert.equal(Number(byTemplate.split(' ').pop()), 2, 'both project ids counted under one template');
    assert.ok(countLine('/api/v1/projects', '200'));
    assert.ok(!text.includes(id), 'concrete ids never become label values');
  });
});

describe('with no worker polling', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack({ worker: false });
  });
  after(async () => stack?.stop());

  it('/health answers 503 naming the worker as down, with database and temporal ok', async () => {
    const res = await stack.request('GET', '/health');
    assert.equal(res.status, 503);
    assert.equal(res.body.status, 'degraded');
    assert.deepEqual(res.body.down, ['worker']);
    assert.equal(res.body.worker.status, 'down');
    assert.match(res.body.worker.error, new RegExp(stack.taskQueue));
    assert.equal(res.body.database.status, 'ok');
    assert.equal(res.body.temporal.status, 'ok');
  });

  it('GET /api/v1/admin/system answers at once with the round trip down, naming the missing worker', async () => {
    const started = Date.now();
    const res = await stack.request('GET', '/api/v1/admin/system', { key: stack.adminKey });
    assert.equal(res.status, 200);
    assert.ok(Date.now() - started < 5000, 'does not wait out the probe timeout');
    assert.equal(res.body.database.status, 'ok');
    assert.equal(res.body.worker.status, 'down');
    assert.equal(res.body.temporal.workflow_round_trip.status, 'down');
    assert.match(res.body.temporal.workflow_round_trip.error, /no worker polls/);
  });

  it('/health turns 200 once a worker starts polling the task queue', async () => {
    await stack.startWorker();
    const up = await eventually(() => stack.request('GET', '/health'), (r) => r.status === 200);
    assert.equal(up.status, 200, JSON.stringify(up.body));
    await stack.stopWorker();
  });
});
