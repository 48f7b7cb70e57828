// The binary cache's speed, against baselines measured in the same run:
// - narinfo lookups per second at 16 concurrent keep-alive connections (autocannon, in a process of its
//   own), a known path and an unknown one, against the same server answering the static nix-cache-info
//   (the HTTP stack's ceiling);
// - NAR download MiB/s over one connection (curl, as Nix uses), against `nix-store --dump` of the same
//   path to /dev/null.
// The store path is made here (half random bytes, half text, like real outputs: MIB mebibytes in all),
// published (dumped and xz-compressed once, as when a build finishes) and removed from the store after.
// Goals: narinfo lookups ≥ 5,000/s (harmonia 3.2.0 on this kind of machine: 9,678/s); NAR download ≥ 0.7× `nix-store --dump`.
// Run: node --import tsx bench/binary-cache.ts [MIB=64] [SECONDS per run=5]
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile, execFileSync, spawn } from 'node:child_process';
import type autocannon from 'autocannon';
import { publishBuildOutputs } from '../activities/cache/publish-build-outputs';
import { storePathHashPart } from '../lib/binary-cache/narinfo';
import { runBench, startBenchStack } from './support';

const MIB = Number(process.argv[2] ?? 64);
const SECONDS = Number(process.argv[3] ?? 5);
const ROUNDS = 3;
const DOWNLOAD_ROUNDS = 9;
const CONNECTIONS = 16;

/** A directory of MIB mebibytes, half incompressible, half text, added to the local store. */
function makeStorePath(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-bench-'));
  const src = path.join(dir, `bench-${crypto.randomBytes(4).toString('hex')}`);
  fs.mkdirSync(src);
  const half = (MIB * 1024 * 1024) / 2;
  fs.writeFileSync(path.join(src, 'random.bin'), crypto.randomBytes(half));
  const line = 'ringmaster binary cache benchmark: a line of text that compresses well, like documentation\n';
  fs.writeFileSync(path.join(src, 'text.txt'), line.repeat(Math.ceil(half / line.length)).slice(0, half));
  const storePath = execFileSync('nix-store', ['--add', src], { encoding: 'utf8' }).trim();
  fs.rmSync(dir, { recursive: true, force: true });
  return storePath;
}

const AUTOCANNON = require.resolve('autocannon/autocannon.js');

/** Runs autocannon in its own process (the server keeps this one's event loop to itself). */
function autocannonRun(url: string, seconds: number): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AUTOCANNON, '--json', '-c', String(CONNECTIONS), '-d', String(seconds), url], { stdio: ['ignore', 'pipe', 'ignore'] });
    const out: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(JSON.parse(Buffer.concat(out).toString('utf8')) as autocannon.Result) : reject(new Error(`autocannon exited with ${code}`))));
  });
}

interface Lookups {
  rps: number;
  p99: number;
  errors: number;
  non2xx: number;
}
const medianRun = (runs: Lookups[]) => [...runs].sort((a, b) => a.rps - b.rps)[Math.floor(runs.length / 2)];

async function lookupsPerSecond(url: string): Promise<Lookups> {
  const result = await autocannonRun(url, SECONDS);
  return { rps: result.requests.average, p99: result.latency.p99, errors: result.errors, non2xx: result.non2xx };
}

/** Downloads `url` once with curl; answers bytes and seconds. */
function download(url: string): Promise<{ bytes: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['--silent', '--fail', '--output', '/dev/null', '--write-out', '%{size_download} %{time_total}', url], (err, stdout) => {
      if (err) return reject(err);
      const [bytes, seconds] = stdout.trim().split(' ').map(Number);
      resolve({ bytes, seconds });
    });
  });
}

/** `nix-store --dump PATH > /dev/null`; answers seconds. */
function dumpToDevNull(storePath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const devNull = fs.openSync('/dev/null', 'w');
    const started = process.hrtime.bigint();
    const child = spawn('nix-store', ['--dump', storePath], { stdio: ['ignore', devNull, 'inherit'] });
    child.once('error', reject);
    child.once('close', (code) => {
      fs.closeSync(devNull);
      if (code !== 0) reject(new Error(`nix-store --dump exited with ${code}`));
      else resolve(Number(process.hrtime.bigint() - started) / 1e9);
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mibPerSecond = (bytes: number, seconds: number) => bytes / 1024 / 1024 / seconds;

async function main(): Promise<void> {
  const bench = await startBenchStack({ worker: false });
  const stack = bench.stack;
  const storePath = makeStorePath();
  try {
    const publishStarted = process.hrtime.bigint();
    await publishBuildOutputs({ db: stack.db, dataDir: stack.dataDir }, { buildId: null, outputs: [storePath] });
    const publishSeconds = Number(process.hrtime.bigint() - publishStarted) / 1e9;
    const cache = `${stack.url}/nix-cache`;
    const narinfo = await (await fetch(`${cache}/${storePathHashPart(storePath)}.narinfo`)).text();
    const field = (name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(narinfo)![1];
    const narSize = Number(field('NarSize'));
    const fileSize = Number(field('FileSize'));
    const narUrl = `${cache}/${field('URL')}`;

    console.log(`binary cache benchmark: ${os.cpus().length} CPUs (shared), ${CONNECTIONS} connections, ${SECONDS} s per run`);
    console.log(`  test path: ${(narSize / 1024 / 1024).toFixed(1)} MiB NAR, ${(fileSize / 1024 / 1024).toFixed(1)} MiB as xz (${((fileSize / narSize) * 100).toFixed(0)}%), published in ${publishSeconds.toFixed(1)} s (once, at build end)`);

    // Warm up the server and the narinfo LRU.
    await autocannonRun(`${cache}/${storePathHashPart(storePath)}.narinfo`, 2);
    // Rounds alternate the three runs, so a change in the machine's load hits all of them alike.
    const runs = { baseline: [] as Lookups[], hit: [] as Lookups[], miss: [] as Lookups[] };
    for (let round = 0; round < ROUNDS; round++) {
      runs.baseline.push(await lookupsPerSecond(`${cache}/nix-cache-info`));
      runs.hit.push(await lookupsPerSecond(`${cache}/${storePathHashPart(storePath)}.narinfo`));
      runs.miss.push(await lookupsPerSecond(`${cache}/${'0'.repeat(32)}.narinfo`));
    }
    const baseline = medianRun(runs.baseline);
    const hit = medianRun(runs.hit);
    const miss = medianRun(runs.miss);
    const bad = [...runs.hit, ...runs.baseline].reduce((n, r) => n + r.errors + r.non2xx, 0);
    if (bad > 0) throw new Error(`${bad} errors or non-2xx answers during the lookups`);
    console.log(`narinfo lookups per second, median of ${ROUNDS} rounds (goal >= 5,000/s; harmonia 3.2.0 on this kind of machine: 9,678/s):`);
    console.log(`  baseline, static nix-cache-info:  ${baseline.rps.toFixed(0)}/s (p99 ${baseline.p99} ms)`);
    console.log(`  known path (200):                 ${hit.rps.toFixed(0)}/s (p99 ${hit.p99} ms), ${(hit.rps / baseline.rps).toFixed(2)}x baseline`);
    console.log(`  unknown path (404):               ${miss.rps.toFixed(0)}/s (p99 ${miss.p99} ms), ${(miss.rps / baseline.rps).toFixed(2)}x baseline`);

    const downloads: number[] = [];
    const dumps: number[] = [];
    await download(narUrl);
    await dumpToDevNull(storePath);
    for (let i = 0; i < DOWNLOAD_ROUNDS; i++) {
      const d = await download(narUrl);
      if (d.bytes !== fileSize) throw new Error(`downloaded ${d.bytes} bytes, expected ${fileSize}`);
      downloads.push(d.seconds);
      dumps.push(await dumpToDevNull(storePath));
    }
    const downloadSeconds = median(downloads);
    const dumpSeconds = median(dumps);
    const dumpRate = mibPerSecond(narSize, dumpSeconds);
    const fileRate = mibPerSecond(fileSize, downloadSeconds);
    const narRate = mibPerSecond(narSize, downloadSeconds);
    console.log(`NAR download, one connection, median of ${DOWNLOAD_ROUNDS} (goal >= 0.7x nix-store --dump):`);
    console.log(`  baseline, nix-store --dump > /dev/null:  ${dumpRate.toFixed(0)} MiB/s of NAR`);
    console.log(`  GET of the stored .nar.xz:                ${fileRate.toFixed(0)} MiB/s of file bytes, ${(fileRate / dumpRate).toFixed(2)}x baseline`);
    console.log(`                                            ${narRate.toFixed(0)} MiB/s of NAR delivered, ${(narRate / dumpRate).toFixed(2)}x baseline`);
  } finally {
    await bench.stop();
    try {
      execFileSync('nix-store', ['--delete', storePath], { stdio: 'ignore' });
    } catch {
      /* still referenced or already gone */
    }
  }
}

runBench(main);
