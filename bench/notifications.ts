/**
 * bench/notifications: what durable, ordered delivery costs next to sending the same requests by hand.
 *
 *   npx tsx bench/notifications.ts [N=100]
 *
 * N builds each start and finish (2N commit statuses, one (commit, context) key per build) against a
 * real HTTP server on loopback, through Ringmaster (real Temporal, PostgreSQL, worker: task rows, one
 * NotificationWorkflow per key, one activity per delivery). Baseline, in the same run: the same 2N
 * POSTs sent directly, the two of each key in order, the keys in parallel. Also: what queuing an
 * event costs the activity that raises it, next to one database and one Temporal round trip.
 * No issue sets a goal for it: the figures are read against the baseline.
 */
import { RecordingServer } from '../test/support/recording-server';
import { configureNotifications, raiseBuildEvent, seedRunningBuild, waitForTasks } from '../test/notifications/support';
import { runBench, startBenchStack } from './support';

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 100);
  const bench = await startBenchStack({ worker: true });
  const stack = bench.stack;
  const server = await new RecordingServer().start();
  try {
    await configureNotifications(stack, { targets: [{ type: 'github_status', name: 'bench', api_url: server.url, token: 't' }] });
    const builds = [];
    for (let i = 0; i < n; i++) builds.push((await seedRunningBuild(stack, `job${i}`)).build);

    // Baseline: the same requests by hand.
    const t0 = Date.now();
    await Promise.all(
      builds.map(async (b) => {
        for (const state of ['pending', 'success']) {
          const res = await fetch(`${server.url}/repos/acme/hello/statuses/${b.id}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ state, context: `ringmaster/main/${b.job_name}` }) });
          await res.text();
        }
      }),
    );
    const directSeconds = (Date.now() - t0) / 1000;

    // Through Ringmaster.
    const enqueueMs: number[] = [];
    const t1 = Date.now();
    for (const b of builds) {
      for (const kind of ['build_started', 'build_finished'] as const) {
        const s = performance.now();
        await raiseBuildEvent(stack, b.id, kind, kind === 'build_finished' ? 'succeeded' : undefined);
        enqueueMs.push(performance.now() - s);
      }
    }
    const queuedSeconds = (Date.now() - t1) / 1000;
    await waitForTasks(stack, { target_name: 'bench' }, ['completed', 'superseded'], 600_000);
    const ringmasterSeconds = (Date.now() - t1) / 1000;

    const roundTrips: number[] = [];
    for (let i = 0; i < 50; i++) {
      const s = performance.now();
      await stack.db.raw('select 1');
      roundTrips.push(performance.now() - s);
    }
    const temporalTrips: number[] = [];
    for (let i = 0; i < 50; i++) {
      const s = performance.now();
      await stack.temporal.connection.workflowService.getSystemInfo({});
      temporalTrips.push(performance.now() - s);
    }
    // The inherent part: starting any workflow (what every build and evaluation pays too).
    const workflowStarts: number[] = [];
    for (let i = 0; i < 20; i++) {
      const s = performance.now();
      await stack.temporal.client.workflow.start('SystemProbeWorkflow', { taskQueue: stack.taskQueue, workflowId: `bench-probe-${i}-${Date.now()}`, args: [] });
      workflowStarts.push(performance.now() - s);
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const lag = await stack.db.raw(
      `select percentile_cont(0.5) within group (order by extract(epoch from completed_at - event_at)) as p50,
              percentile_cont(0.95) within group (order by extract(epoch from completed_at - event_at)) as p95,
              count(*) filter (where status = 'completed') as delivered, count(*) filter (where status = 'superseded') as superseded
         from notification_tasks where target_name = 'bench'`,
    );
    const row = lag.rows[0];
    console.log(`notifications: ${2 * n} statuses over ${n} keys (${row.delivered} delivered, ${row.superseded} superseded pending)`);
    console.log(`  direct POSTs (baseline):  ${directSeconds.toFixed(2)} s`);
    console.log(`  through Ringmaster:       ${ringmasterSeconds.toFixed(2)} s (queuing took ${queuedSeconds.toFixed(2)} s)  ratio ${(ringmasterSeconds / directSeconds).toFixed(1)}x`);
    console.log(`  lag event → delivery:     p50 ${Number(row.p50).toFixed(2)} s, p95 ${Number(row.p95).toFixed(2)} s`);
    console.log(`  queuing one event:        ${mean(enqueueMs).toFixed(1)} ms, ${(mean(enqueueMs) / mean(roundTrips)).toFixed(1)}x one database round trip (${mean(roundTrips).toFixed(2)} ms), ${(mean(enqueueMs) / mean(temporalTrips)).toFixed(1)}x one Temporal round trip (${mean(temporalTrips).toFixed(2)} ms), ${(mean(enqueueMs) / mean(workflowStarts)).toFixed(1)}x one workflow start (${mean(workflowStarts).toFixed(1)} ms)`);
  } finally {
    await server.stop();
    await bench.stop();
  }
}

runBench(main);
