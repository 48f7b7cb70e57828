/**
 * bench/pipeline: the cost of orchestration next to the builds themselves.
 *
 *   npx tsx bench/pipeline.ts [N=40]
 *
 * 1. A DAG of N tiny derivations (job i depends on job ⌊i/2⌋), from trigger to all built through
 *    Ringmaster (real Temporal, PostgreSQL, worker, local Nix), against plain `nix-build` of the same
 *    attributes in the same run (each with its own nonce, so neither finds the other's outputs).
 * 2. Builds per second with instant builds: the same jobset evaluated again under a new project, so
 *    every output is already valid and each build only goes through its workflows.
 * No goal of its own (a binary tree: few waits per build); issue 6's goals are measured by bench/dag.ts
 * (≤ 1.3× nix-build) and bench/already-built.ts (≥ 0.5× a no-op workflow's rate).
 */
import os from 'node:os';
import { createJobset, nonce, trigger, waitForBuilds, waitForEvaluation } from '../test/support/pipeline';
import { makeNixRepo, runBench, startBenchStack, timeNixBuild, triggerAndBuildAll } from './support';

function dagExpression(n: number): string {
  const jobs: string[] = [];
  for (let i = 0; i < n; i++) {
    const dep = i === 0 ? '' : `dep = j${Math.floor((i - 1) / 2)};`;
    jobs.push(`  j${i} = mk "j${i}" { ${dep} };`);
  }
  return `{ nonce ? "x" }:
let mk = name: extra: derivation ({ inherit name nonce; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" "echo \${name} \${nonce} > $out" ]; } // extra);
in rec {
${jobs.join('\n')}
}
`;
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 40);
  const repo = await makeNixRepo(dagExpression(n));

  // Baseline: plain nix-build of the same attributes.
  const baseNonce = nonce();
  const nixBuildSeconds = timeNixBuild(repo.file, baseNonce, os.cpus().length);

  const bench = await startBenchStack({ worker: true, env: { RINGMASTER_LOCAL_MAX_JOBS: String(os.cpus().length) } });
  const stack = bench.stack;
  try {
    const { seconds: ringmasterSeconds, jobsetId } = await triggerAndBuildAll(stack, repo.url, { nonce: nonce() }, 600_000);

    // Instant builds: the same derivations again under another project.
    const inputs = await stack.db('jobset_inputs').where({ jobset_id: jobsetId });
    const again = await createJobset(stack, repo.url, { inputs: Object.fromEntries(inputs.map((i) => [i.name, i.value])) });
    const t2 = Date.now();
    const ev2 = await trigger(stack, again.jobsetId);
    await waitForEvaluation(stack, ev2.id, 600_000);
    await waitForBuilds(stack, ev2.id, { timeoutMs: 600_000 });
    const instantSeconds = (Date.now() - t2) / 1000;

    console.log(`bench/pipeline: DAG of ${n} tiny derivations, ${os.cpus().length} cores`);
    console.log(`  nix-build (baseline):            ${nixBuildSeconds.toFixed(2)} s`);
    console.log(`  ringmaster trigger → all built:  ${ringmasterSeconds.toFixed(2)} s  (${(ringmasterSeconds / nixBuildSeconds).toFixed(2)}× nix-build)`);
    console.log(`  instant builds:                  ${n} in ${instantSeconds.toFixed(2)} s = ${(n / instantSeconds).toFixed(1)} builds/s (trigger → all recorded)`);
  } finally {
    await bench.stop();
    repo.remove();
  }
}

runBench(main);
