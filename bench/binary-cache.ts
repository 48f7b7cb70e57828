// The binary cache's speed, against baselines measured in the same run:
// - narinfo lookups per second at 16 concurrent keep-alive connections (autocannon), a known path and an
//   unknown one, against the same server answering the static nix-cache-info (the HTTP stack's ceiling);
// - NAR download MiB/s over one connection, against `nix-store --dump` of the same path to /dev/null.
// The store path is made here (half random bytes, half text, like real outputs: MIB mebibytes in all),
// published (dumped and xz-compressed once, as when a build finishes) and removed from the store after.
// Run: node --import tsx bench/binary-cache.ts [MIB=64] [SECONDS=10]
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import autocannon from 'autocannon';
import { startTestStack } from '../test/support/stack';
import { publishBuildOutputs } from '../activities/cache/publish-build-outputs';
import { storePathHashPart } from '../lib/binary-cache/narinfo';

const MIB = Number(process.argv[2] ?? 64);
const SECONDS = Number(process.argv[3] ?? 10);
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

async function lookupsPerSecond(url: string): Promise<{ rps: number; p99: number; errors: number; non2xx: number }> {
  const result = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS, pipelining: 1 });
  return { rps: result.requests.average, p99: result.latency.p99, errors: result.errors, non2xx: result.non2xx };
}

/** Downloads `url` once over a keep-alive connection; answers bytes and seconds. */
function download(url: string, agent: http.Agent): Promise<{ bytes: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    http.get(url, { agent }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`${url}: ${res.statusCode}`));
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('end', () => resolve({ bytes, seconds: Number(process.hrtime.bigint() - started) / 1e9 }));
      res.on('error', reject);
    }).on('error', reject);
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
  const stack = await startTestStack({ worker: false });
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
    await autocannon({ url: `${cache}/${storePathHashPart(storePath)}.narinfo`, connections: CONNECTIONS, duration: 2 });
    const baseline = await lookupsPerSecond(`${cache}/nix-cache-info`);
    const hit = await lookupsPerSecond(`${cache}/${storePathHashPart(storePath)}.narinfo`);
    const miss = await lookupsPerSecond(`${cache}/${'0'.repeat(32)}.narinfo`);
    console.log('narinfo lookups per second (goal >= 5,000/s; harmonia 3.2.0 on this kind of machine: 9,678/s):');
    console.log(`  baseline, static nix-cache-info:  ${baseline.rps.toFixed(0)}/s (p99 ${baseline.p99} ms)`);
    console.log(`  known path (200):                 ${hit.rps.toFixed(0)}/s (p99 ${hit.p99} ms), ${(hit.rps / baseline.rps).toFixed(2)}x baseline, errors ${hit.errors}, non-2xx ${hit.non2xx}`);
    console.log(`  unknown path (404):               ${miss.rps.toFixed(0)}/s (p99 ${miss.p99} ms), ${(miss.rps / baseline.rps).toFixed(2)}x baseline`);

    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const downloads: number[] = [];
    const dumps: number[] = [];
    await download(narUrl, agent);
    await dumpToDevNull(storePath);
    for (let i = 0; i < 5; i++) {
      const d = await download(narUrl, agent);
      if (d.bytes !== fileSize) throw new Error(`downloaded ${d.bytes} bytes, expected ${fileSize}`);
      downloads.push(d.seconds);
      dumps.push(await dumpToDevNull(storePath));
    }
    agent.destroy();
    const downloadSeconds = median(downloads);
    const dumpSeconds = median(dumps);
    const dumpRate = mibPerSecond(narSize, dumpSeconds);
    const fileRate = mibPerSecond(fileSize, downloadSeconds);
    const narRate = mibPerSecond(narSize, downloadSeconds);
    console.log('NAR download, one connection, median of 5 (goal >= 0.7x nix-store --dump):');
    console.log(`  baseline, nix-store --dump > /dev/null:  ${dumpRate.toFixed(0)} MiB/s of NAR`);
    console.log(`  GET of the stored .nar.xz:                ${fileRate.toFixed(0)} MiB/s of file bytes, ${(fileRate / dumpRate).toFixed(2)}x baseline`);
    console.log(`                                            ${narRate.toFixed(0)} MiB/s of NAR delivered, ${(narRate / dumpRate).toFixed(2)}x baseline`);
  } finally {
    await stack.stop();
    try {
      execFileSync('nix-store', ['--delete', storePath], { stdio: 'ignore' });
    } catch {
      /* still referenced or already gone */
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
