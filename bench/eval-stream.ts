// Streams a generated jobset of N trivial jobs through evaluateJobs and prints jobs/second and the node process's
// peak RSS, against a baseline of one plain `nix-instantiate` of the same expression in the same invocation.
// No goal of its own: the walker alone, a floor for issue 6's evaluation goal (≤ 1.5× nix-instantiate, trigger to
// evaluation completed), which `bench/evaluation.ts` measures.
//
//   node --import tsx bench/eval-stream.ts [N=10000]
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { evaluateJobs } from '../activities/nix/evaluate';
import { runNix } from '../activities/nix/nix-env';
import { runBench } from './support';

function jobsetExpression(count: number): string {
  return `{ nonce }:
builtins.listToAttrs (builtins.genList (i: {
  name = "job\${toString i}";
  value = (derivation {
    name = "bench-\${toString i}";
    inherit nonce;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "echo \${toString i} > $out" ];
  }) // { meta.schedulingPriority = 100; };
}) ${count})
`;
}

async function main() {
  const count = Number(process.argv[2] ?? 10_000);
  if (!Number.isInteger(count) || count <= 0) throw new Error(`N must be a positive integer, got ${process.argv[2]}`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ringmaster-bench-eval-'));
  try {
    await writeFile(path.join(dir, 'release.nix'), jobsetExpression(count));

    // Baseline: nix-instantiate writes every .drv and prints all paths at the end.
    const baselineStart = process.hrtime.bigint();
    const baseline = await runNix('nix-instantiate', [path.join(dir, 'release.nix'), '--argstr', 'nonce', randomBytes(8).toString('hex')]);
    const baselineSeconds = Number(process.hrtime.bigint() - baselineStart) / 1e9;
    if (baseline.code !== 0) throw new Error(`baseline nix-instantiate failed: ${baseline.stderr}`);
    const baselineCount = baseline.stdout.trim().split('\n').length;

    // The streaming evaluator, with a fresh nonce so it writes its own .drv files too.
    let peakRss = process.memoryUsage().rss;
    const startRss = peakRss;
    const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); }, 20);
    const start = process.hrtime.bigint();
    let firstJobMs = 0;
    let jobs = 0;
    let errors = 0;
    for await (const item of evaluateJobs({
      sourceDir: dir,
      flakeMode: false,
      expression: 'release.nix',
      args: [{ name: 'nonce', kind: 'argstr', value: randomBytes(8).toString('hex') }],
    })) {
      if (item.kind === 'job') jobs++;
      else errors++;
      if (jobs === 1 && firstJobMs === 0) firstJobMs = Number(process.hrtime.bigint() - start) / 1e6;
      if (jobs % 100 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    clearInterval(sampler);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);

    const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
    console.log(`jobs:                         ${jobs} (errors: ${errors})`);
    console.log(`baseline nix-instantiate:     ${baselineCount} drvs in ${baselineSeconds.toFixed(2)} s = ${(baselineCount / baselineSeconds).toFixed(0)} jobs/s`);
    console.log(`streaming evaluateJobs:       ${jobs} jobs in ${seconds.toFixed(2)} s = ${(jobs / seconds).toFixed(0)} jobs/s`);
    console.log(`ratio (stream / baseline):    ${(seconds / baselineSeconds).toFixed(2)}x the time`);
    console.log(`first job after:              ${firstJobMs.toFixed(0)} ms`);
    console.log(`node RSS: start ${mb(startRss)} MB, peak ${mb(peakRss)} MB (+${mb(peakRss - startRss)} MB)`);
    if (jobs !== count || errors !== 0) process.exitCode = 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

runBench(main);
