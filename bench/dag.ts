/**
 * bench/dag: the issue-6 DAG, trigger to all built, against plain `nix-build --max-jobs 2` of the same
 * attributes on this machine's own Nix, in the same run.
 *
 *   npx tsx bench/dag.ts [LAYERS=10] [WIDTH=20] [--ssh] [--profile] [--rounds R]
 *
 * LAYERS × WIDTH jobs; each sleeps 50 ms and depends on two jobs of the layer before. Each side has
 * its own nonce, so neither finds the other's outputs.
 * - Without `--ssh` Ringmaster builds on the worker's own Nix (the local fallback, `max_jobs` 2). Goal ≤ 1.3×.
 * - With `--ssh` it builds on one SSH builder registered through the admin API: a real sshd on loopback,
 *   `max_jobs` 2, its own chroot store (so every input is copied to it and every output back). Goal ≤ 2×.
 * - With `--profile` it then prints where the time went: per workflow type the workflow tasks, events,
 *   local activities, activities and signals of every history; the CPU seconds of this process (worker
 *   and API, with the Nix processes it spawned), the Temporal dev server and PostgreSQL; and how long
 *   until the first derivation started and how busy the slots were.
 * - With `--rounds R` (default 0) R more DAGs follow the first on the same stack, each with a nonce of
 *   its own and beside a `nix-build` of its own, each once the stack has gone quiet (what the round before
 *   left, its workflows closing and its outputs served, would otherwise slow the next baseline): the
 *   first run is a fresh process (its code not yet optimised by V8, its first workflows and queries
 *   cold), the later ones a server that has built before, as a deployment has; it prints each round's
 *   ratio and their median.
 */
import os from 'node:os';
import { nonce } from '../test/support/pipeline';
import { startSshBuilder, type SshBuilder } from '../test/support/sshd';
import { registerSshBuilder, type RegisteredBuilder } from '../test/support/builder-registration';
import { benchArguments, makeNixRepo, medianOfRounds, runBench, startBenchStack, timeNixBuild, triggerAndBuildAll } from './support';
import { cpuOfBenchStack as cpuOf, printWorkflowProfile, profileWorkflows, slotUse, waitForQuietStack } from './run-profile';

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
  const { numbers, rounds } = benchArguments();
  const [layers, width] = [...numbers, 10, 20];
  const overSsh = process.argv.includes('--ssh');
  const profile = process.argv.includes('--profile');
  const repo = await makeNixRepo(dagExpression(layers, width));

  const nixBuildSeconds = timeNixBuild(repo.file, nonce(), 2);

  let builder: SshBuilder | undefined;
  let registered: RegisteredBuilder | undefined;
  const bench = await startBenchStack({ worker: true, env: { RINGMASTER_LOCAL_MAX_JOBS: '2' } });
  try {
    if (overSsh) {
      builder = await startSshBuilder({ name: 'bench-dag' });
      registered = await registerSshBuilder(bench.stack, builder, { maxJobs: 2 });
    }
    const cpuBefore = cpuOf(bench);
    const nodeBefore = process.cpuUsage();
    const { seconds, triggeredAt } = await triggerAndBuildAll(bench.stack, repo.url, { nonce: nonce() }, 3_600_000);
    const where = overSsh ? 'one SSH builder (loopback sshd, max_jobs 2, its own chroot store)' : 'local builder (max_jobs 2)';
    const goal = overSsh ? 2 : 1.3;
    console.log(`bench/dag: ${layers} layers × ${width} jobs (50 ms each, two dependencies each), ${where}, ${os.cpus().length} cores, load average ${os.loadavg()[0].toFixed(1)}`);
    console.log(`  nix-build --max-jobs 2, local (baseline):  ${nixBuildSeconds.toFixed(2)} s`);
    console.log(`  ringmaster trigger → all built:            ${seconds.toFixed(2)} s  (${(seconds / nixBuildSeconds).toFixed(2)}× nix-build; goal ≤ ${goal}×)`);
    // Where the steps ran: a step row that another build's step realised has no builder of its own.
    const ran = await bench.stack.db('build_steps').whereNotNull('started_at').groupBy('builder_id').select('builder_id').count<{ builder_id: string | null; count: string }[]>('* as count');
    const nameOf = (builderId: string | null) => (builderId === null ? "the worker's own Nix" : builderId === registered?.id ? 'the SSH builder' : builderId);
    console.log(`  step rows started (one per derivation realised, in the build that ran it), by builder: ${ran.map((r) => `${nameOf(r.builder_id ?? null)}: ${r.count}`).join(', ')}`);
    if (profile) {
      const cpuAfter = cpuOf(bench);
      const [steps] = await bench.stack.db('build_steps').count<{ count: string }[]>('* as count');
      console.log(`  CPU seconds during the run: this process (worker, API, Nix) ${(cpuAfter.self - cpuBefore.self).toFixed(1)}, Temporal ${(cpuAfter.temporal - cpuBefore.temporal).toFixed(1)}, PostgreSQL ${(cpuAfter.postgres - cpuBefore.postgres).toFixed(1)}; of this process's, Node itself ${(cpuSince(nodeBefore)).toFixed(1)}; ${steps.count} step rows`);
      console.log(`  ${await slotUse(bench.stack.db, triggeredAt, 2)}`);
      printWorkflowProfile(await profileWorkflows(bench.stack.temporal.client));
    }
    // More rounds on the same stack, each beside a nix-build of its own (the machine's load drifts).
    const ratios: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      // What the last round left (its workflows closing, its outputs served) ends before this round's baseline runs.
      const quietAfter = await waitForQuietStack(bench);
      const baseline = timeNixBuild(repo.file, nonce(), 2);
      const cpu0 = cpuOf(bench);
      const run = await triggerAndBuildAll(bench.stack, repo.url, { nonce: nonce() }, 3_600_000);
      const cpu1 = cpuOf(bench);
      ratios.push(run.seconds / baseline);
      console.log(`  round ${round} (a server that has built before): nix-build ${baseline.toFixed(2)} s, ringmaster ${run.seconds.toFixed(2)} s: ${(run.seconds / baseline).toFixed(2)}×, load average ${os.loadavg()[0].toFixed(1)}, stack quiet after ${quietAfter.toFixed(1)} s; CPU s: this process ${(cpu1.self - cpu0.self).toFixed(1)}, Temporal ${(cpu1.temporal - cpu0.temporal).toFixed(1)}, PostgreSQL ${(cpu1.postgres - cpu0.postgres).toFixed(1)}`);
      if (profile) console.log(`    ${(await slotUse(bench.stack.db, run.triggeredAt, 2)).split('\n')[0]}`);
    }
    if (ratios.length > 0) console.log(`  later rounds: ${medianOfRounds(ratios, 'nix-build')}; goal ≤ ${goal}×)`);
  } finally {
    await bench.stop();
    await builder?.stop();
    repo.remove();
  }
}

function cpuSince(before: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1e6;
}


runBench(main);
