/**
 * bench/already-built: builds whose outputs are already valid, against a no-op workflow.
 *
 *   npx tsx bench/already-built.ts [N=1000]
 *
 * 1. Baseline: N round trips of the smallest workflow the worker runs (SystemProbeWorkflow: one
 *    workflow task, one activity), started 32 at a time like the evaluation starts builds, on the same
 *    Temporal server and worker: workflows/s from first start to last result.
 * 2. A jobset of N trivial jobs whose outputs `nix-build` made valid beforehand: trigger → evaluation
 *    completed → every build succeeded and every `build-<id>` workflow closed, in builds/s.
 * The goal is ≥ 0.5× the no-op workflow's rate.
 */
import os from 'node:os';
import { buildsOf, createJobset, nonce, trigger, waitForEvaluation } from '../test/support/pipeline';
import { ConcurrentStarts } from '../activities/concurrent-starts';
import { buildWorkflowId } from '../lib/workflow-ids';
import { makeNixRepo, runBench, startBenchStack, timeNixBuild, trivialJobs, waitForBuildWorkflowsStarted } from './support';

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 1000);
  const repo = await makeNixRepo(trivialJobs(n));
  const token = nonce();
  // Makes every output valid beforehand (its time is not part of the figures).
  timeNixBuild(repo.file, token, 2);

  const bench = await startBenchStack({ worker: true });
  const stack = bench.stack;
  try {
    const client = stack.temporal.client;
    // Baseline: no-op workflows, start to result, 32 in flight.
    const t0 = Date.now();
    const probes = new ConcurrentStarts<number>(32, async (i) => {
      const handle = await client.workflow.start('SystemProbeWorkflow', { taskQueue: stack.taskQueue, workflowId: `bench-noop-${token}-${i}`, args: [] });
      await handle.result();
    });
    probes.push(...Array.from({ length: n }, (_, i) => i));
    await probes.drain();
    const noopSeconds = (Date.now() - t0) / 1000;

    const js = await createJobset(stack, repo.url, { inputs: { nonce: token } });
    const t1 = Date.now();
    const evaluation = await trigger(stack, js.jobsetId);
    const done = await waitForEvaluation(stack, evaluation.id, 1_800_000);
    if (done.status !== 'completed') throw new Error(`evaluation ${done.status}: ${done.error_message}`);
    const evaluatedSeconds = (Date.now() - t1) / 1000;
    // The build workflows start after the evaluation completes: wait until each has started, then for its result.
    await waitForBuildWorkflowsStarted(stack, evaluation.id);
    const builds = Object.values(await buildsOf(stack, evaluation.id));
    const closed = new ConcurrentStarts<string>(32, async (id) => {
      await client.workflow.getHandle(buildWorkflowId(id)).result();
    });
    closed.push(...builds.map((b) => String(b.id)));
    await closed.drain();
    const allSeconds = (Date.now() - t1) / 1000;
    const after = Object.values(await buildsOf(stack, evaluation.id));
    const notSucceeded = after.filter((b) => b.status !== 'succeeded');
    if (after.length !== n || notSucceeded.length) throw new Error(`${after.length} builds, ${notSucceeded.length} not succeeded`);

    const noopRate = n / noopSeconds;
    const rate = n / allSeconds;
    console.log(`bench/already-built: ${n} builds whose outputs are valid, ${os.cpus().length} cores`);
    console.log(`  no-op workflow (baseline):                 ${noopRate.toFixed(1)} workflows/s (${noopSeconds.toFixed(2)} s)`);
    console.log(`  trigger → evaluation completed:            ${evaluatedSeconds.toFixed(2)} s (every build recorded succeeded)`);
    console.log(`  trigger → every build workflow closed:     ${allSeconds.toFixed(2)} s = ${rate.toFixed(1)} builds/s (${(rate / noopRate).toFixed(2)}× the no-op rate; goal ≥ 0.5×)`);
  } finally {
    await bench.stop();
    repo.remove();
  }
}

runBench(main);
