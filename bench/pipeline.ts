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
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startTestServices } from '../test/support/services';
import { startTestStack } from '../test/support/stack';
import { makeGitRepo } from '../test/support/git-fixture';
import { createJobset, nonce, trigger, waitForBuilds, waitForEvaluation } from '../test/support/pipeline';

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
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-bench-'));
  fs.writeFileSync(path.join(dir, 'release.nix'), dagExpression(n));
  const repo = await makeGitRepo(dir);

  // Baseline: plain nix-build of the same attributes.
  const baseNonce = nonce();
  const t0 = Date.now();
  const nb = spawnSync('nix-build', [path.join(dir, 'release.nix'), '--no-out-link', '--argstr', 'nonce', baseNonce, '--option', 'substituters', '', '-j', String(os.cpus().length)], { encoding: 'utf8' });
  const nixBuildSeconds = (Date.now() - t0) / 1000;
  if (nb.status !== 0) throw new Error(`nix-build failed: ${nb.stderr}`);

  const services = await startTestServices();
  process.env.RINGMASTER_TEST_TEMPORAL_ADDRESS = services.temporalAddress;
  process.env.RINGMASTER_TEST_POSTGRES_URL = services.postgresBaseUrl;
  const stack = await startTestStack({ worker: true, env: { RINGMASTER_LOCAL_MAX_JOBS: String(os.cpus().length) } });
  try {
    const js = await createJobset(stack, repo.url, { inputs: { nonce: nonce() } });
    const t1 = Date.now();
    const evaluation = await trigger(stack, js.jobsetId);
    await waitForEvaluation(stack, evaluation.id, 600_000);
    const builds = await waitForBuilds(stack, evaluation.id, { timeoutMs: 600_000 });
    const ringmasterSeconds = (Date.now() - t1) / 1000;
    const failed = Object.values(builds).filter((b) => b.status !== 'succeeded');
    if (failed.length) throw new Error(`${failed.length} builds did not succeed: ${failed[0].status} ${failed[0].error_message}`);

    // Instant builds: the same derivations again under another project.
    const inputs = await stack.db('jobset_inputs').where({ jobset_id: js.jobsetId });
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
