import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { seedBuild, seedEvaluation, seedJobset, seedProject, type Row } from '../support/seed';
import { freePort } from '../../lib/processes';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const q = (params: Record<string, string>) => new URLSearchParams(params).toString();

describe('metrics', () => {
  let stack: TestStack;
  const tag = crypto.randomBytes(3).toString('hex');
  let project: Row;
  let otherProject: Row;
  let jobset: Row;
  let evaluation: Row;
  let otherEvaluation: Row;

  before(async () => {
    const workerMetricsPort = await freePort();
    stack = await startTestStack({ env: { RINGMASTER_WORKER_METRICS_ADDRESS: `127.0.0.1:${workerMetricsPort}` } });
    project = await seedProject(stack.db, { name: `metrics-${tag}` });
    otherProject = await seedProject(stack.db, { name: `other-${tag}` });
    jobset = await seedJobset(stack.db, project.id);
    evaluation = await seedEvaluation(stack.db, jobset.id);
    otherEvaluation = await seedEvaluation(stack.db, (await seedJobset(stack.db, otherProject.id)).id);
  });
  after(async () => stack?.stop());

  it('counts the builds created in each bucket by status, for the server, a project or a jobset', async () => {
    const at = (day: number, hour: number) => `2025-06-0${day}T${String(hour).padStart(2, '0')}:00:00Z`;
    await seedBuild(stack.db, { evaluation, status: 'succeeded', created_at: at(1, 3) });
    await seedBuild(stack.db, { evaluation, status: 'succeeded', created_at: at(1, 20) });
    await seedBuild(stack.db, { evaluation, status: 'failed', created_at: at(1, 21) });
    await seedBuild(stack.db, { evaluation, status: 'pending', created_at: at(3, 9) });
    await seedBuild(stack.db, { evaluation: otherEvaluation, status: 'failed', created_at: at(3, 10) });
    const range = { from: '2025-06-01T00:00:00Z', to: '2025-06-04T00:00:00Z', bucket: '1d' };

    const all = await stack.request('GET', `/api/v1/metrics/timeseries/builds?${q(range)}`);
    assert.equal(all.status, 200, all.text);
    assert.equal(all.body.bucket_seconds, 86400);
    assert.deepEqual(all.body.points.map((p: Row) => p.time), ['2025-06-01T00:00:00.000Z', '2025-06-02T00:00:00.000Z', '2025-06-03T00:00:00.000Z']);
    assert.deepEqual(all.body.points.map((p: Row) => p.total), [3, 0, 2]);
    assert.deepEqual(
      all.body.points.map((p: Row) => [p.by_status.succeeded, p.by_status.failed, p.by_status.pending]),
      [[2, 1, 0], [0, 0, 0], [0, 1, 1]],
    );

    const ofProject = await stack.request('GET', `/api/v1/metrics/timeseries/builds?${q({ ...range, project_id: project.id })}`);
    assert.deepEqual(ofProject.body.points.map((p: Row) => p.total), [3, 0, 1]);
    assert.equal(ofProject.body.project_id, project.id);
    const ofJobset = await stack.request('GET', `/api/v1/metrics/timeseries/builds?${q({ ...range, bucket: '6h', jobset_id: jobset.id })}`);
    assert.equal(ofJobset.body.points.length, 12);
    assert.deepEqual(ofJobset.body.points.filter((p: Row) => p.total > 0).map((p: Row) => [p.time, p.total]), [
      ['2025-06-01T00:00:00.000Z', 1],
      ['2025-06-01T18:00:00.000Z', 2],
      ['2025-06-03T06:00:00.000Z', 1],
    ]);
  });

  it('gives p50, p90 and p99 of the durations of the builds that finished in each bucket (percentile_cont, within 2% from the hourly histogram)', async () => {
    for (let i = 1; i <= 10; i++) {
      const completed = new Date(Date.parse('2025-07-01T12:00:00Z') + i * 60_000);
      await seedBuild(stack.db, {
        evaluation,
        status: i === 10 ? 'failed' : 'succeeded',
        created_at: new Date(completed.getTime() - 3600_000),
        started_at: new Date(completed.getTime() - i * 10_000),
        completed_at: completed,
      });
    }
    const r = await stack.request('GET', `/api/v1/metrics/timeseries/duration?${q({ from: '2025-07-01T00:00:00Z', to: '2025-07-03T00:00:00Z', bucket: '1d' })}`);
    assert.equal(r.status, 200, r.text);
    const [first, second] = r.body.points;
    assert.equal(first.count, 10);
    // Whole-hour buckets read the hourly histogram: percentile_cont of 10 s … 100 s within 2% (docs/API.md).
    const within2Percent = (actual: number, exact: number) => assert.ok(Math.abs(actual - exact) <= 0.02 * exact, `${actual} vs ${exact}`);
    within2Percent(first.p50, 55);
    within2Percent(first.p90, 91);
    within2Percent(first.p99, 99.1);
    assert.notEqual(first.p50, 55, 'read from the histogram, not from builds');
    assert.deepEqual(second, { time: '2025-07-02T00:00:00.000Z', count: 0, p50: null, p90: null, p99: null });
    // Bounds off the hour aggregate builds: percentile_cont exactly.
    const exact = await stack.request('GET', `/api/v1/metrics/timeseries/duration?${q({ from: '2025-07-01T00:30:00Z', to: '2025-07-02T00:30:00Z', bucket: '1d' })}`);
    assert.equal(exact.status, 200, exact.text);
    assert.equal(exact.body.points[0].count, 10);
    assert.equal(exact.body.points[0].p50, 55);
    assert.ok(Math.abs(exact.body.points[0].p90 - 91) < 1e-9, String(exact.body.points[0].p90));
    assert.ok(Math.abs(exact.body.points[0].p99 - 99.1) < 1e-9, String(exact.body.points[0].p99));
    const otherProjectOnly = await stack.request('GET', `/api/v1/metrics/timeseries/duration?${q({ from: '2025-07-01T00:00:00Z', to: '2025-07-02T00:00:00Z', project_id: otherProject.id })}`);
    assert.equal(otherProjectOnly.body.points[0].count, 0);
  });

  it('defaults to the last 30 days in whole buckets', async () => {
    const r = await stack.request('GET', '/api/v1/metrics/timeseries/builds');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.bucket, '1d');
    assert.equal(r.body.points.length, 30);
    assert.equal(Date.parse(r.body.to) % 86400_000, 0);
    assert.ok(Date.parse(r.body.to) >= Date.now());
  });

  it('refuses a range of too many buckets, a range that ends before it starts and an unknown bucket, naming the field', async () => {
    for (const [route, params, field] of [
      ['builds', { from: '2020-01-01T00:00:00Z', to: '2025-01-01T00:00:00Z', bucket: '5m' }, 'bucket'],
      ['duration', { from: '2025-02-01T00:00:00Z', to: '2025-01-01T00:00:00Z' }, 'from'],
      ['builds', { bucket: '3d' }, 'bucket'],
      ['duration', { from: 'last tuesday' }, 'from'],
      ['builds', { project_id: 'nope' }, 'project_id'],
    ] as const) {
      const r = await stack.request('GET', `/api/v1/metrics/timeseries/${route}?${q(params)}`);
      assert.equal(r.status, 400, `${route} ${JSON.stringify(params)}: ${r.text}`);
      assert.equal(r.body.error_code, 'VALIDATION_ERROR');
      assert.ok(JSON.stringify(r.body.details).includes(field), r.text);
    }
  });

  it('lists builds, queue and builders\' slots by system', async () => {
    const x86 = `x86_64-${tag}`;
    const arm = `aarch64-${tag}`;
    await seedBuild(stack.db, { evaluation, system: x86, status: 'pending' });
    await seedBuild(stack.db, { evaluation, system: x86, status: 'pending' });
    await seedBuild(stack.db, { evaluation, system: x86, status: 'failed' });
    const running = await seedBuild(stack.db, { evaluation, system: arm, status: 'running' });
    const [builder] = await stack.db('remote_builders').insert({ name: `builder-${tag}`, ssh_uri: 'ssh://nix@127.0.0.1:22', systems: [x86, arm], max_jobs: 4 }).returning('*');
    await stack.db('build_steps').insert({ build_id: running.id, step_number: 1, drv_path: running.drv_path, builder_id: builder.id, status: 'running' });
    await stack.db('builder_sessions').insert({ machine_id: `agent-${tag}`, name: `agent-${tag}`, systems: [arm], max_jobs: 2, current_jobs: 1, connected: true, last_seen: new Date() });

    const r = await stack.request('GET', '/api/v1/metrics/systems');
    assert.equal(r.status, 200, r.text);
    const of = (system: string) => r.body.find((s: Row) => s.system === system);
    assert.deepEqual(of(x86), { system: x86, builds: 3, queued: 2, running: 0, succeeded: 0, failed: 1, builders: 1, slots: 4, slots_in_use: 0 });
    assert.deepEqual(of(arm), { system: arm, builds: 1, queued: 0, running: 1, succeeded: 0, failed: 0, builders: 2, slots: 6, slots_in_use: 2 });
  });

  it('keeps build stats in a summary that agrees with counting the builds, through inserts, updates, deletes and compaction', async () => {
    const counted = async () => {
      const rows = (await stack.db('builds').select('status').count<{ status: string; count: string }[]>('* as count').groupBy('status')) as Array<{ status: string; count: string }>;
      return Object.fromEntries(rows.map((row) => [row.status, Number(row.count)]));
    };
    const reported = async () => {
      const r = await stack.request('GET', '/api/v1/builds/stats');
      assert.equal(r.status, 200, r.text);
      return Object.fromEntries(Object.entries(r.body.by_status as Record<string, number>).filter(([, n]) => n > 0));
    };
    const builds = [];
    for (let i = 0; i < 5; i++) builds.push(await seedBuild(stack.db, { evaluation, status: 'pending' }));
    assert.deepEqual(await reported(), await counted());
    // One status change per statement, as the workers write them: enough deltas to be compacted on a read.
    for (let round = 0; round < 120; round++) {
      for (const b of builds) await stack.db('builds').where({ id: b.id }).update({ status: round % 2 === 0 ? 'running' : 'pending' });
    }
    await stack.db('builds').where({ id: builds[0].id }).update({ status: 'succeeded', started_at: new Date(Date.now() - 30_000), completed_at: new Date() });
    await stack.db('builds').where({ id: builds[1].id }).delete();
    await stack.db('builds').where({ id: builds[2].id }).update({ keep: true }); // no change of status: no delta
    assert.ok(Number((await stack.db('build_count_deltas').count<{ count: string }[]>('* as count'))[0].count) > 1000);
    assert.deepEqual(await reported(), await counted());
    assert.ok(Number((await stack.db('build_count_deltas').count<{ count: string }[]>('* as count'))[0].count) < 100, 'compacted by the read');
    assert.deepEqual(await reported(), await counted());
  });

  it('exports builds by status, queue depth by system, builder slots, evaluation durations and the worker\'s Temporal SDK metrics at /prometheus', async () => {
    const ended = new Date(Date.now() - 60_000);
    await seedEvaluation(stack.db, jobset.id, { started_at: new Date(ended.getTime() - 90_000), completed_at: ended });
    const [{ count: failed }] = await stack.db('builds').where({ status: 'failed' }).count<{ count: string }[]>('* as count');

    // The SDK's exporter publishes once the worker has polled: wait for it, not for a fixed time.
    let text = '';
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(250)) {
      const r = await stack.request('GET', '/prometheus');
      assert.equal(r.status, 200);
      text = r.text;
      if (/^temporal_worker_task_slots_available\{/m.test(text)) break;
    }
    assert.match(text, new RegExp(`^ringmaster_builds\\{status="failed"\\} ${failed}$`, 'm'));
    assert.match(text, new RegExp(`^ringmaster_queue_depth\\{system="x86_64-${tag}"\\} 2$`, 'm'));
    assert.match(text, new RegExp(`^ringmaster_builder_slots\\{builder="builder-${tag}",kind="remote"\\} 4$`, 'm'));
    assert.match(text, new RegExp(`^ringmaster_builder_slots_in_use\\{builder="builder-${tag}",kind="remote"\\} 1$`, 'm'));
    assert.match(text, new RegExp(`^ringmaster_builder_slots_in_use\\{builder="agent-${tag}",kind="agent"\\} 1$`, 'm'));
    assert.match(text, /^ringmaster_evaluation_duration_seconds\{stat="count"\} 1$/m);
    assert.match(text, /^ringmaster_evaluation_duration_seconds\{quantile="0.5",stat="quantile"\} 90$/m);
    assert.match(text, /^temporal_worker_task_slots_available\{.*\} \d+/m, 'the worker\'s SDK metrics');
    assert.match(text, /^ringmaster_http_request_duration_seconds_bucket/m);
  });
});
