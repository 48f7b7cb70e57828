// Publishing small store paths to the binary cache: in-process (the NAR written in TypeScript, xz by liblzma
// on the thread pool) against the spawned `nix-store --dump | xz -3` (the baseline, the way every path was
// published before), in the same run, on the same paths:
// - wall time per path;
// - the event loop's delay while publishing (p99 and max, `monitorEventLoopDelay`), which is what every
//   workflow task and activity of the worker waits behind: each spawn forks the whole process.
// The process first holds BALLAST_MIB of live heap, as big as the worker is in a `bench/dag.ts` run (a fork
// copies the page tables of all of it), and a timer ticks every millisecond as the worker's other work would.
// The paths are PATHS small files (a line of text each, like the DAG's outputs), added to the store in one
// `nix-store --add` and deleted again at the end. The two ways alternate in ROUNDS rounds, each into a fresh
// data folder.
// Run: node --import tsx bench/publish-small-paths.ts [PATHS=200] [ROUNDS=3] [BALLAST_MIB=400]
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { compressNar, IN_PROCESS_NAR_MAX_BYTES } from '../activities/cache/compress-nar';
import { storePathInfos } from '../activities/cache/store-path-info';
import { runBench } from './support';

const PATHS = Number(process.argv[2] ?? 200);
const ROUNDS = Number(process.argv[3] ?? 3);
const BALLAST_MIB = Number(process.argv[4] ?? 400);

interface RoundFigures {
  msPerPath: number;
  p99DelayMs: number;
  maxDelayMs: number;
}

/** PATHS one-line files added to the store in one `nix-store --add`. */
function makeSmallStorePaths(): string[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-bench-small-'));
  try {
    const run = crypto.randomBytes(4).toString('hex');
    const files = Array.from({ length: PATHS }, (_, i) => {
      const file = path.join(dir, `small-${run}-${i}`);
      fs.writeFileSync(file, `small output ${i} of bench run ${run}\n`);
      return file;
    });
    return execFileSync('nix-store', ['--add', ...files], { encoding: 'utf8' }).trim().split('\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Live heap the size of a busy worker: arrays of small objects, as a real heap holds. */
function holdBallast(mebibytes: number): unknown[] {
  const ballast: unknown[] = [];
  for (let i = 0; i < mebibytes; i++) ballast.push(Array.from({ length: 16_384 }, (_, j) => ({ i, j })));
  return ballast;
}

/** Publishes every path one after another (as the serving activity does), into a fresh data folder. */
async function publishAll(paths: string[], narSizeOf: (p: string) => number): Promise<RoundFigures> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-bench-cache-'));
  const ticker = setInterval(() => {}, 1);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  try {
    delay.enable();
    const started = performance.now();
    for (const p of paths) await compressNar(dataDir, p, narSizeOf(p));
    const elapsed = performance.now() - started;
    delay.disable();
    return { msPerPath: elapsed / paths.length, p99DelayMs: delay.percentile(99) / 1e6, maxDelayMs: delay.max / 1e6 };
  } finally {
    clearInterval(ticker);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const figures = (rounds: RoundFigures[]) =>
  `${mean(rounds.map((r) => r.msPerPath)).toFixed(2)} ms/path; event-loop delay p99 ${mean(rounds.map((r) => r.p99DelayMs)).toFixed(1)} ms, max ${Math.max(...rounds.map((r) => r.maxDelayMs)).toFixed(1)} ms`;

async function main(): Promise<void> {
  const ballast = holdBallast(BALLAST_MIB);
  const paths = makeSmallStorePaths();
  try {
    await comparePublishing(paths);
  } finally {
    execFileSync('nix-store', ['--delete', ...paths], { stdio: 'ignore' });
  }
  if (ballast.length !== BALLAST_MIB) throw new Error('the ballast was collected');
}

async function comparePublishing(paths: string[]): Promise<void> {
  const infos = await storePathInfos(paths);
  const narSize = (p: string) => infos.get(p)!.narSize;
  const rss = process.memoryUsage().rss / 2 ** 20;
  const inProcess: RoundFigures[] = [];
  const spawned: RoundFigures[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // The baseline is told each path is over the in-process limit, so it takes the spawned, streamed way.
    spawned.push(await publishAll(paths, () => IN_PROCESS_NAR_MAX_BYTES + 1));
    inProcess.push(await publishAll(paths, narSize));
  }
  console.log(`bench/publish-small-paths: ${PATHS} store paths of ${narSize(paths[0])}-byte NARs, ${ROUNDS} rounds each way, process RSS ${rss.toFixed(0)} MB, ${os.cpus().length} cores, load average ${os.loadavg()[0].toFixed(1)}`);
  console.log(`  spawned nix-store --dump | xz -3 (baseline): ${figures(spawned)}`);
  console.log(`  in-process NAR writer + liblzma:            ${figures(inProcess)}`);
  console.log(`  in-process / spawned: ${(mean(inProcess.map((r) => r.msPerPath)) / mean(spawned.map((r) => r.msPerPath))).toFixed(3)}× the time per path, ${(mean(inProcess.map((r) => r.p99DelayMs)) / mean(spawned.map((r) => r.p99DelayMs))).toFixed(3)}× the p99 event-loop delay`);
}

runBench(main);
