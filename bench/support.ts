// What the benches share: running one, a stack on fresh test services, a jobset repository, trivial jobs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestServices, type TestServices } from '../test/support/services';
import { startTestStack, type TestStack, type TestStackOptions } from '../test/support/stack';
import { makeGitRepo } from '../test/support/git-fixture';
import { createJobset, trigger, waitForBuilds, waitForEvaluation } from '../test/support/pipeline';
import { spawnSync } from 'node:child_process';

/**
 * Runs a bench: exits when `main` ends (with process.exitCode, 0 unless the bench set it), or prints the error
 * and exits 1. A process that serves after `main` resolves (a bench's server child) passes `exitAtEnd: false`.
 */
export function runBench(main: () => Promise<void>, options: { exitAtEnd?: boolean } = {}): void {
  main().then(
    () => {
      if (options.exitAtEnd !== false) process.exit();
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}

/**
 * A bench's numeric arguments in order (not the value of `--rounds`), and `--rounds R` (0 without it):
 * how many more measured runs follow the first on the same stack.
 */
export function benchArguments(argv: string[] = process.argv.slice(2)): { numbers: number[]; rounds: number } {
  const numbers = argv.filter((a, i) => /^\d+$/.test(a) && argv[i - 1] !== '--rounds').map(Number);
  const roundsAt = argv.indexOf('--rounds');
  const rounds = roundsAt >= 0 ? Number(argv[roundsAt + 1]) : 0;
  if (!Number.isInteger(rounds) || rounds < 0) throw new Error('--rounds takes a whole number');
  return { numbers, rounds };
}

/** The median of the rounds' ratios with their range, as the benches print it: `median 1.50× <baseline> (min 1.48×, max 1.55×`. */
export function medianOfRounds(ratios: number[], baseline: string): string {
  const sorted = [...ratios].sort((a, b) => a - b);
  return `median ${sorted[Math.floor(sorted.length / 2)].toFixed(2)}× ${baseline} (min ${sorted[0].toFixed(2)}×, max ${sorted[sorted.length - 1].toFixed(2)}×`;
}

export interface BenchStack {
  stack: TestStack;
  /** The Temporal dev server and PostgreSQL it runs on (their processes, for a profile's CPU figures). */
  services: TestServices;
  /** Stops the stack, then its services. */
  stop(): Promise<void>;
}

/** Fresh test services (Temporal dev server, PostgreSQL) and a stack on them. */
export async function startBenchStack(options: TestStackOptions): Promise<BenchStack> {
  const services = await startTestServices();
  process.env.RINGMASTER_TEST_TEMPORAL_ADDRESS = services.temporalAddress;
  process.env.RINGMASTER_TEST_POSTGRES_URL = services.postgresBaseUrl;
  const stack = await startTestStack(options).catch(async (err) => {
    await services.stop();
    throw err;
  });
  // As a deployment is by the time its first jobset is triggered: the worker has run its first tasks.
  await stack.workerWarmedUp();
  return {
    stack,
    services,
    stop: async () => {
      try {
        await stack.stop();
      } finally {
        await services.stop();
      }
    },
  };
}

export interface NixRepo {
  /** `release.nix` (for baselines that evaluate or build it directly). */
  file: string;
  /** The git repository holding it, for a jobset. */
  url: string;
  /** Removes the folder and the repository. */
  remove(): void;
}

/** `release.nix` of `expression` in a temporary folder, and a git repository of it. */
export async function makeNixRepo(expression: string): Promise<NixRepo> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-bench-'));
  const file = path.join(dir, 'release.nix');
  fs.writeFileSync(file, expression);
  const repo = await makeGitRepo(dir);
  return {
    file,
    url: repo.url,
    remove: () => {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(repo.dir, { recursive: true, force: true });
    },
  };
}

/** A Nix expression of `n` trivial jobs (t0 … t{n-1}), each writing its number and the `nonce` argument. */
export function trivialJobs(n: number): string {
  return `{ nonce ? "x" }:
let mk = i: derivation { name = "t\${toString i}"; inherit nonce; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" "echo \${toString i} \${nonce} > $out" ]; };
in builtins.listToAttrs (builtins.genList (i: { name = "t\${toString i}"; value = mk i; }) ${n})
`;
}

/** Seconds `nix-build` takes for `file` with argument `nonce`, no substituters, `maxJobs` at once: the benches' baseline. */
export function timeNixBuild(file: string, nonce: string, maxJobs: number): number {
  const t0 = Date.now();
  const nb = spawnSync('nix-build', [file, '--no-out-link', '--argstr', 'nonce', nonce, '--option', 'substituters', '', '--max-jobs', String(maxJobs)], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (nb.status !== 0) throw new Error(`nix-build failed: ${nb.stderr}`);
  return (Date.now() - t0) / 1000;
}

/**
 * Waits until every build of the evaluation has its workflow started: the evaluation completes once its
 * builds are recorded, and `startBuildWorkflowsOfEvaluation` starts their workflows after (deleting each
 * build's `build_workflow_starts` row once started).
 */
export async function waitForBuildWorkflowsStarted(stack: TestStack, evaluationId: string): Promise<void> {
  for (;;) {
    const [{ count }] = await stack.db('build_workflow_starts').where({ evaluation_id: evaluationId }).count<{ count: string }[]>('* as count');
    if (Number(count) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** A jobset of `url` with `inputs`, triggered: seconds from the trigger to every build succeeded. */
export async function triggerAndBuildAll(stack: TestStack, url: string, inputs: Record<string, string>, timeoutMs: number): Promise<{ seconds: number; jobsetId: string; triggeredAt: Date }> {
  const js = await createJobset(stack, url, { inputs });
  const t1 = Date.now();
  const evaluation = await trigger(stack, js.jobsetId);
  // Looked at every 50 ms, with two small queries: the figure is trigger to all built, not to the next look.
  await waitForEvaluation(stack, evaluation.id, timeoutMs, 50);
  const builds = await waitForBuilds(stack, evaluation.id, { timeoutMs, everyMs: 50 });
  const seconds = (Date.now() - t1) / 1000;
  const failed = Object.values(builds).filter((b) => b.status !== 'succeeded');
  if (failed.length) throw new Error(`${failed.length} builds did not succeed: ${failed[0].status} ${failed[0].error_message}`);
  return { seconds, jobsetId: js.jobsetId, triggeredAt: new Date(t1) };
}
