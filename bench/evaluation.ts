/**
 * bench/evaluation: trigger → evaluation `completed` (every build recorded, every build workflow
 * started) for a jobset of N trivial jobs, against `nix-instantiate` of the same expression.
 *
 *   npx tsx bench/evaluation.ts [N=2000]
 *
 * The goal is ≤ 1.5×. The builds are not waited for (they go on after the evaluation completes).
 */
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { createJobset, nonce, trigger, waitForEvaluation } from '../test/support/pipeline';
import { makeNixRepo, runBench, startBenchStack, trivialJobs } from './support';

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 2000);
  const repo = await makeNixRepo(trivialJobs(n));

  // Baseline: nix-instantiate of every job (a nonce of its own, so nothing is instantiated already).
  const t0 = Date.now();
  const ni = spawnSync('nix-instantiate', [repo.file, '--argstr', 'nonce', nonce()], { encoding: 'utf8', maxBuffer: 256 << 20 });
  const instantiateSeconds = (Date.now() - t0) / 1000;
  if (ni.status !== 0) throw new Error(`nix-instantiate failed: ${ni.stderr}`);

  const bench = await startBenchStack({ worker: true });
  const stack = bench.stack;
  try {
    const js = await createJobset(stack, repo.url, { inputs: { nonce: nonce() } });
    const t1 = Date.now();
    const evaluation = await trigger(stack, js.jobsetId);
    const done = await waitForEvaluation(stack, evaluation.id, 3_600_000);
    const seconds = (Date.now() - t1) / 1000;
    if (done.status !== 'completed') throw new Error(`evaluation ${done.status}: ${done.error_message}`);
    const [{ count }] = await stack.db('builds').where({ evaluation_id: evaluation.id }).count<{ count: string }[]>('* as count');
    if (Number(count) !== n) throw new Error(`${count} builds recorded, expected ${n}`);

    console.log(`bench/evaluation: ${n} trivial jobs, ${os.cpus().length} cores`);
    console.log(`  nix-instantiate (baseline):          ${instantiateSeconds.toFixed(2)} s`);
    console.log(`  trigger → evaluation completed:      ${seconds.toFixed(2)} s  (${(seconds / instantiateSeconds).toFixed(2)}× nix-instantiate; goal ≤ 1.5×)`);
  } finally {
    await bench.stop();
    repo.remove();
  }
}

runBench(main);
