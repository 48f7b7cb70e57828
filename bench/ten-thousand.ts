/**
 * bench/ten-thousand: a 10,000-job evaluation against Temporal's limits and the worker's memory.
 *
 *   node --import tsx bench/ten-thousand.ts [N=10000] [--no-baseline]
 *
 * N trivial jobs (no dependencies), built on the worker's own Nix (`max_jobs` 2), the worker running as a
 * process of its own (`ringmaster worker`, as deployed) so that its memory is its own. Prints:
 * - trigger → evaluation `completed` → every build succeeded, against `nix-build --max-jobs 2` of the same
 *   attributes (its own nonce) in the same run. Goal ≤ 1.5×. Then trigger → every build's workflow
 *   closed: a build whose result its evaluation's batch recorded before its workflow started has
 *   succeeded for the API before its workflow (one workflow task) has run.
 * - the worker process's peak resident memory (VmHWM), and how its RSS grew. Goal ≤ 500 MB.
 * - every workflow run's history (listed from Temporal's visibility; running ones described): the
 *   largest in events and in bytes, per workflow type. Goal ≤ 10,240 events.
 * - the largest payload in the biggest histories (the 10 largest runs in bytes and the 3 largest of each
 *   workflow type): its size, event and field. Goal ≤ 256 KB.
 * Progress (builds per status, worker RSS) is printed every 30 s. SIGTERM or SIGINT to this process (run it
 * with `node --import tsx` so that its PID is the bench's) stops the wait early: the figures above are then
 * printed for what was reached, the histories of the runs still open as they stand. Validate with a small N
 * (e.g. 500) first.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createJobset, isFinished, nonce, sleep, trigger, waitForEvaluation } from '../test/support/pipeline';
import { spawnRingmasterProcess, stopWorkerProcesses } from '../test/support/worker-process';
import { largestPayloadOf, listRunSizes, type LargestPayload, type RunSize } from './history-limits';
import { megabytes, peakResidentBytes, residentBytes } from './process-memory';
import { makeNixRepo, runBench, startBenchStack, timeNixBuild, trivialJobs } from './support';
import { countOpenBuildWorkflows } from '../activities/records/builds';

const EVENTS_GOAL = 10_240;
const PAYLOAD_GOAL = 256 * 1024;
const RSS_GOAL = 500 * 2 ** 20;

async function main(): Promise<void> {
  const n = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 10_000);
  // Nix 2.8's nix-build slows down with the number of top-level goals: at 10,000 it had registered 3,000
  // outputs after 30 minutes. --no-baseline measures Ringmaster alone (memory, histories, payloads, time).
  const withBaseline = !process.argv.includes('--no-baseline');
  const repo = await makeNixRepo(trivialJobs(n));
  const loadAtStart = os.loadavg()[0];

  const nixBuildSeconds = withBaseline ? timeNixBuild(repo.file, nonce(), 2) : NaN;
  if (withBaseline) console.log(`bench/ten-thousand: nix-build --max-jobs 2 of ${n} jobs took ${nixBuildSeconds.toFixed(2)} s`);

  const bench = await startBenchStack({ worker: false });
  const stack = bench.stack;
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-bench-worker-'));
  const worker = spawnRingmasterProcess(stack, 'worker', path.join(logDir, 'worker.log'), { detached: true, env: { RINGMASTER_LOCAL_MAX_JOBS: '2' } });
  const workerPid = worker.pid!;
  const rssTimeline: string[] = [];
  let finished = false;
  let stoppedEarly = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => (stoppedEarly = true));
  try {
    // The worker is polling once it has run a no-op workflow.
    await stack.temporal.client.workflow.execute('SystemProbeWorkflow', { taskQueue: stack.taskQueue, workflowId: `bench-ready-${nonce()}`, args: [] });
    const rssAtReady = residentBytes(workerPid);

    const js = await createJobset(stack, repo.url, { inputs: { nonce: nonce() } });
    const t0 = Date.now();
    const evaluation = await trigger(stack, js.jobsetId);
    const done = await waitForEvaluation(stack, evaluation.id, 3_600_000);
    if (done.status !== 'completed') throw new Error(`evaluation ${done.status}: ${done.error_message}`);
    const evaluatedSeconds = (Date.now() - t0) / 1000;
    rssTimeline.push(`${evaluatedSeconds.toFixed(0)} s (evaluation completed): ${megabytes(residentBytes(workerPid))}`);

    let lastReport = Date.now();
    let succeeded = 0;
    for (;;) {
      const rows = await stack.db('builds').where({ evaluation_id: evaluation.id }).groupBy('status').select('status').count<{ status: string; count: string }[]>('* as count');
      const byStatus = Object.fromEntries(rows.map((r) => [r.status, Number(r.count)]));
      succeeded = byStatus.succeeded ?? 0;
      const open = rows.filter((r) => !isFinished(r.status)).reduce((sum, r) => sum + Number(r.count), 0);
      if (Date.now() - lastReport >= 30_000 || open === 0) {
        lastReport = Date.now();
        const line = `${((Date.now() - t0) / 1000).toFixed(0)} s: ${megabytes(residentBytes(workerPid))}`;
        rssTimeline.push(line);
        const countStarted = performance.now();
        const openWorkflows = await countOpenBuildWorkflows(stack.db);
        const countMs = performance.now() - countStarted;
        console.log(`  progress at ${line} worker RSS; builds ${JSON.stringify(byStatus)}; ${openWorkflows} build workflows open (counted in ${countMs.toFixed(1)} ms); load average ${os.loadavg()[0].toFixed(1)}`);
      }
      if (stoppedEarly) {
        console.log(`  stopped early, by a signal, at ${((Date.now() - t0) / 1000).toFixed(0)} s: builds ${JSON.stringify(byStatus)}`);
        break;
      }
      if (open === 0) {
        const failed = rows.filter((r) => r.status !== 'succeeded');
        if (failed.length) throw new Error(`builds did not all succeed: ${JSON.stringify(byStatus)}`);
        break;
      }
      await sleep(2_000);
    }
    const builtSeconds = (Date.now() - t0) / 1000;
    // Every build has succeeded in PostgreSQL (what the API shows); builds whose result a batch recorded
    // before their workflow started may still wait for their workflow to start and close (each closes in
    // its first workflow task). Waited for too, so that the histories below are every build's.
    let closedSeconds: number | null = null;
    for (const deadline = Date.now() + 1_800_000; !stoppedEarly && Date.now() < deadline; await sleep(2_000)) {
      const toStart = await stack.db('build_workflow_starts').where({ evaluation_id: evaluation.id }).first('build_id');
      if (toStart) continue;
      const open = await stack.temporal.client.workflow.count(`WorkflowType = 'BuildWorkflow' AND ExecutionStatus = 'Running' AND TaskQueue = '${stack.taskQueue}'`);
      if (open.count === 0) {
        closedSeconds = (Date.now() - t0) / 1000;
        break;
      }
    }
    const peakRss = peakResidentBytes(workerPid);

    const runs = await listRunSizes(stack.temporal.client);
    const byEvents = [...runs].sort((a, b) => b.events - a.events);
    const byBytes = [...runs].sort((a, b) => b.bytes - a.bytes);
    const types = [...new Set(runs.map((r) => r.type))].sort();
    const scanned = new Map<string, RunSize>();
    for (const r of byBytes.slice(0, 10)) scanned.set(r.runId, r);
    for (const type of types) for (const r of byBytes.filter((x) => x.type === type).slice(0, 3)) scanned.set(r.runId, r);
    let largest: LargestPayload | undefined;
    for (const run of scanned.values()) {
      const found = await largestPayloadOf(stack.temporal.client, run);
      if (found && (!largest || found.bytes > largest.bytes)) largest = found;
    }

    const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
    const top = byEvents[0];
    console.log(`bench/ten-thousand: ${n} trivial jobs, local builder (max_jobs 2), worker process ${workerPid}, ${os.cpus().length} cores, load average ${loadAtStart.toFixed(1)} at start, ${os.loadavg()[0].toFixed(1)} at end`);
    console.log(`  nix-build --max-jobs 2 (baseline):        ${withBaseline ? `${nixBuildSeconds.toFixed(2)} s` : 'not measured (--no-baseline)'}`);
    console.log(`  trigger → evaluation completed:           ${evaluatedSeconds.toFixed(2)} s`);
    if (stoppedEarly) {
      console.log(`  trigger → stopped early (not all built):  ${builtSeconds.toFixed(2)} s, ${succeeded} of ${n} succeeded = ${(succeeded / (builtSeconds - evaluatedSeconds)).toFixed(1)} builds/s after the evaluation completed`);
    } else {
      const ratio = withBaseline ? `${(builtSeconds / nixBuildSeconds).toFixed(2)}× nix-build; goal ≤ 1.5×: ${met(builtSeconds / nixBuildSeconds <= 1.5)}` : 'no baseline';
      console.log(`  trigger → every build succeeded:          ${builtSeconds.toFixed(2)} s  (${ratio})`);
      console.log(`    evaluation completed → all succeeded:   ${(builtSeconds - evaluatedSeconds).toFixed(2)} s = ${(n / (builtSeconds - evaluatedSeconds)).toFixed(1)} builds/s`);
      console.log(`  trigger → every build workflow closed:    ${closedSeconds === null ? 'not within 30 minutes of the last success' : `${closedSeconds.toFixed(2)} s`}`);
    }
    console.log(`  worker peak RSS (VmHWM):                  ${megabytes(peakRss)} (goal ≤ 500 MB: ${met(peakRss <= RSS_GOAL)}); ${megabytes(rssAtReady)} when ready; RSS over time: ${rssTimeline.join(', ')}`);
    console.log(`  workflow runs:                            ${runs.length}`);
    console.log(`  largest history in events:                ${top.events} events, ${top.type} ${top.workflowId} (run ${top.runId}, ${top.status}) (goal ≤ ${EVENTS_GOAL}: ${met(top.events <= EVENTS_GOAL)})`);
    console.log(`  largest history in bytes:                 ${(byBytes[0].bytes / 1024).toFixed(1)} KB, ${byBytes[0].type} ${byBytes[0].workflowId} (run ${byBytes[0].runId})`);
    for (const type of types) {
      const ofType = runs.filter((r) => r.type === type);
      const most = ofType.reduce((a, b) => (b.events > a.events ? b : a));
      const mean = ofType.reduce((sum, r) => sum + r.events, 0) / ofType.length;
      console.log(`    ${type}: ${ofType.length} runs, mean ${mean.toFixed(1)} events, max ${most.events} (${most.workflowId}), max ${(Math.max(...ofType.map((r) => r.bytes)) / 1024).toFixed(1)} KB`);
    }
    if (largest) {
      console.log(`  largest payload (${scanned.size} biggest runs scanned): ${(largest.bytes / 1024).toFixed(1)} KB in ${largest.workflowId} event ${largest.eventId}, ${largest.where} (goal ≤ 256 KB: ${met(largest.bytes <= PAYLOAD_GOAL)})`);
    }
    finished = true;
  } finally {
    await stopWorkerProcesses([worker]);
    await bench.stop();
    repo.remove();
    if (finished) fs.rmSync(logDir, { recursive: true, force: true });
    else console.error(`the worker's log is kept in ${logDir}`);
  }
}

runBench(main);
