/**
 * bench/dag: the issue-6 DAG, trigger to all built on the worker's own Nix, against plain
 * `nix-build --max-jobs 2` of the same attributes in the same run.
 *
 *   npx tsx bench/dag.ts [LAYERS=10] [WIDTH=20]
 *
 * LAYERS × WIDTH jobs; each sleeps 50 ms and depends on two jobs of the layer before. Each side has
 * its own nonce, so neither finds the other's outputs. The goal is ≤ 1.3×.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startTestServices } from '../test/support/services';
import { startTestStack } from '../test/support/stack';
import { makeGitRepo } from '../test/support/git-fixture';
import { createJobset, nonce, trigger, waitForBuilds, waitForEvaluation } from '../test/support/pipeline';

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
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-bench-'));
  fs.writeFileSync(path.join(dir, 'release.nix'), dagExpression(layers, width));
  const repo = await makeGitRepo(dir);

  const t0 = Date.now();
  const nb = spawnSync('nix-build', [path.join(dir, 'release.nix'), '--no-out-link', '--argstr', 'nonce', nonce(), '--option', 'substituters', '', '--max-jobs', '2'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const nixBuildSeconds = (Date.now() - t0) / 1000;
  if (nb.status !== 0) throw new Error(`nix-build failed: ${nb.stderr}`);

  const services = await startTestServices();
  process.env.RINGMASTER_TEST_TEMPORAL_ADDRESS = services.temporalAddress;
  process.env.RINGMASTER_TEST_POSTGRES_URL = services.postgresBaseUrl;
  const stack = await startTestStack({ worker: true, env: { RINGMASTER_LOCAL_MAX_JOBS: '2' } });
  try {
    const js = await createJobset(stack, repo.url, { inputs: { nonce: nonce() } });
    const t1 = Date.now();
    const evaluation = await trigger(stack, js.jobsetId);
    await waitForEvaluation(stack, evaluation.id, 3_600_000);
    const builds = await waitForBuilds(stack, evaluation.id, { timeoutMs: 3_600_000 });
    const seconds = (Date.now() - t1) / 1000;
    const failed = Object.values(builds).filter((b) => b.status !== 'succeeded');
    if (failed.length) throw new Error(`${failed.length} builds did not succeed: ${failed[0].status} ${failed[0].error_message}`);
    console.log(`bench/dag: ${layers} layers × ${width} jobs (50 ms each, two dependencies each), local builder, ${os.cpus().length} cores`);
    console.log(`  nix-build --max-jobs 2 (baseline):  ${nixBuildSeconds.toFixed(2)} s`);
    console.log(`  ringmaster trigger → all built:     ${seconds.toFixed(2)} s  (${(seconds / nixBuildSeconds).toFixed(2)}× nix-build; goal ≤ 1.3×)`);
  } finally {
    await stack.stop();
    await services.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(repo.dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
