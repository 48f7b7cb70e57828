/**
 * bench/dag: the issue-6 DAG, trigger to all built on the worker's own Nix, against plain
 * `nix-build --max-jobs 2` of the same attributes in the same run.
 *
 *   npx tsx bench/dag.ts [LAYERS=10] [WIDTH=20]
 *
 * LAYERS × WIDTH jobs; each sleeps 50 ms and depends on two jobs of the layer before. Each side has
 * its own nonce, so neither finds the other's outputs. The goal is ≤ 1.3×.
 */
import os from 'node:os';
import { nonce } from '../test/support/pipeline';
import { makeNixRepo, runBench, startBenchStack, timeNixBuild, triggerAndBuildAll } from './support';

function dagExpression(layers: number, width: number): string {
  const jobs: string[] = [];
  for (let l = 0; l < layers; l++) {
    for (let i = 0; i < width; i++) {
      const deps = l === 0 ? '' : `a = l${l - 1}_${i}; b = l${l - 1}_${(i + 1) % width};`;
      jobs.push(`  l${l}_${i} = mk "l${l}_${i}" { ${deps} };`);
    }
  }
  return `{ nonce ? "x" }:
let mk = name: extra: derivation ({ inherit name nonce; system = builtins.currentSystem; builder = "/bin/sh";
  PATH = "/bin:/usr/bin"; args = [ "-c" "sleep 0.05; echo \${name} \${nonce} > $out" ]; } // extra);
in rec {
${jobs.join('\n')}
}
`;
}

async function main(): Promise<void> {
  const layers = Number(process.argv[2] ?? 10);
  const width = Number(process.argv[3] ?? 20);
  const repo = await makeNixRepo(dagExpression(layers, width));

  const nixBuildSeconds = timeNixBuild(repo.file, nonce(), 2);

  const bench = await startBenchStack({ worker: true, env: { RINGMASTER_LOCAL_MAX_JOBS: '2' } });
  try {
    const { seconds } = await triggerAndBuildAll(bench.stack, repo.url, { nonce: nonce() }, 3_600_000);
    console.log(`bench/dag: ${layers} layers × ${width} jobs (50 ms each, two dependencies each), local builder, ${os.cpus().length} cores`);
    console.log(`  nix-build --max-jobs 2 (baseline):  ${nixBuildSeconds.toFixed(2)} s`);
    console.log(`  ringmaster trigger → all built:     ${seconds.toFixed(2)} s  (${(seconds / nixBuildSeconds).toFixed(2)}× nix-build; goal ≤ 1.3×)`);
  } finally {
    await bench.stop();
    repo.remove();
  }
}

runBench(main);
