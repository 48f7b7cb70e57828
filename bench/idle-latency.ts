/**
 * bench/idle-latency: on an idle stack, how long one queued build waits until its step starts.
 *
 *   npx tsx bench/idle-latency.ts [RUNS=20]
 *
 * RUNS one-job evaluations one after another (each job new, thanks to a nonce); for each, the time from
 * the build row's creation to its step's start (both PostgreSQL timestamps, one clock). Prints the
 * median and the spread. The goal is a median ≤ 1 s. The baseline beside it is the same stack's
 * no-op workflow round trip (SystemProbeWorkflow), the least any Temporal-driven step start can cost.
 */
import os from 'node:os';
import { createJobset, eventually, nonce, trigger, waitForBuilds, waitForEvaluation } from '../test/support/pipeline';
import { makeNixRepo, runBench, startBenchStack } from './support';

const RELEASE_NIX = `{ nonce ? "x" }:
{ one = derivation { name = "one"; inherit nonce; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo $nonce > $out" ]; }; }
`;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 20);
  const repo = await makeNixRepo(RELEASE_NIX);
  const bench = await startBenchStack({ worker: true });
  const stack = bench.stack;
  try {
    const noop: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t = Date.now();
      await (await stack.temporal.client.workflow.start('SystemProbeWorkflow', { taskQueue: stack.taskQueue, workflowId: `bench-idle-noop-${nonce()}`, args: [] })).result();
      noop.push((Date.now() - t) / 1000);
    }
    const waits: number[] = [];
    for (let i = 0; i < runs; i++) {
      const js = await createJobset(stack, repo.url, { inputs: { nonce: nonce() } });
      const evaluation = await trigger(stack, js.jobsetId);
      await waitForEvaluation(stack, evaluation.id);
      const [build] = Object.values(await waitForBuilds(stack, evaluation.id, { timeoutMs: 120_000 }));
      const step = await eventually('the step row', async () => stack.db('build_steps').where({ build_id: build.id }).whereNotNull('started_at').first(), 10_000);
      waits.push((new Date(step.started_at).getTime() - new Date(build.created_at).getTime()) / 1000);
    }
    const m = median(waits);
    console.log(`bench/idle-latency: ${runs} one-job evaluations on an idle stack, ${os.cpus().length} cores`);
    console.log(`  no-op workflow round trip (baseline):  median ${median(noop).toFixed(3)} s`);
    console.log(`  build created → its step started:      median ${m.toFixed(3)} s (min ${Math.min(...waits).toFixed(3)}, max ${Math.max(...waits).toFixed(3)}; ${(m / median(noop)).toFixed(1)}× the no-op round trip; goal median ≤ 1 s)`);
  } finally {
    await bench.stop();
    repo.remove();
  }
}

runBench(main);
