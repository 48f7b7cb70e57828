/**
 * bench/channel-files: what a burst of `nix-channel --update` costs the API for a large channel.
 *
 *   npx tsx bench/channel-files.ts [N=5000]
 *
 * Seeds a channel on an evaluation of N succeeded jobs, then measures, in the same run:
 * - baseline: the first GET of nixexprs.tar.xz (database read, default.nix, tar and xz: what every
 *   request would cost if the file were compressed per request, as Hydra does, #230);
 * - cached: the same GET afterwards (a version query, then the file generated once per version),
 *   one connection and 16 concurrent connections;
 * - revalidated: the same GET with If-None-Match (304, what nix-channel sends once it has the file).
 * No issue sets a goal for it: the figures are read against the baseline.
 */
import crypto from 'node:crypto';
import { fakeStorePath, seedEvaluation, seedJobset, seedProject } from '../test/support/seed';
import { runBench, startBenchStack } from './support';

async function seedLargeEvaluation(db: Parameters<typeof seedProject>[0], jobsetId: string, projectId: string, n: number): Promise<void> {
  const evaluation = await seedEvaluation(db, jobsetId);
  for (let start = 0; start < n; start += 500) {
    const rows = [];
    for (let i = start; i < Math.min(n, start + 500); i++) {
      const out = fakeStorePath(`pkg-${i}-1.0`);
      rows.push({
        id: crypto.randomUUID(),
        evaluation_id: evaluation.id,
        jobset_id: jobsetId,
        project_id: projectId,
        job_name: `pkgs.group${i % 50}.pkg${i}`,
        drv_path: fakeStorePath(`pkg-${i}-1.0.drv`),
        system: 'x86_64-linux',
        status: 'succeeded',
        outputs: JSON.stringify({ out }),
        build_output_path: out,
        meta_description: `package number ${i}`,
      });
    }
    await db('builds').insert(rows);
    await db('build_outputs').insert(rows.map((r) => ({ build_id: r.id, name: 'out', path: r.build_output_path })));
  }
}

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = process.hrtime.bigint();
  const value = await run();
  return { value, ms: Number(process.hrtime.bigint() - start) / 1e6 };
}

async function main() {
  const n = Number(process.argv[2] ?? 5000);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`N must be a positive integer, got ${process.argv[2]}`);
  const bench = await startBenchStack({ worker: false });
  const stack = bench.stack;
  try {
    const project = await seedProject(stack.db);
    const jobset = await seedJobset(stack.db, project.id);
    await seedLargeEvaluation(stack.db, jobset.id, project.id, n);
    const created = await stack.request('POST', '/api/v1/channels', { key: stack.adminKey, body: { project_id: project.id, name: 'bench', jobset_id: jobset.id } });
    if (!created.body.current_evaluation_id) throw new Error(`channel not promoted: ${created.text}`);
    const url = `${stack.url}/channel/bench/nixexprs.tar.xz`;
    const get = async (headers: Record<string, string> = {}) => {
      const res = await fetch(url, { headers });
      const body = Buffer.from(await res.arrayBuffer());
      if (res.status !== 200 && res.status !== 304) throw new Error(`GET ${url}: ${res.status}`);
      return { status: res.status, body, etag: res.headers.get('etag')! };
    };

    const cold = await timed(() => get());
    const sequential = 20;
    const warm = await timed(async () => {
      for (let i = 0; i < sequential; i++) await get();
    });
    const concurrency = 16;
    const perConnection = 10;
    const burst = await timed(() => Promise.all(Array.from({ length: concurrency }, async () => {
      for (let i = 0; i < perConnection; i++) await get();
    })));
    const revalidate = await timed(async () => {
      for (let i = 0; i < sequential; i++) await get({ 'if-none-match': cold.value.etag, 'cache-control': 'max-age=0' });
    });

    const warmMs = warm.ms / sequential;
    const burstRate = (concurrency * perConnection) / (burst.ms / 1000);
    console.log(`bench/channel-files: nixexprs.tar.xz of a channel of ${n} jobs (${(cold.value.body.length / 1024).toFixed(0)} KiB compressed)`);
    console.log(`  baseline, first request (read + generate + xz):  ${cold.ms.toFixed(0)} ms`);
    console.log(`  cached, one connection:                          ${warmMs.toFixed(0)} ms/request  (${(cold.ms / warmMs).toFixed(1)}× faster than the baseline)`);
    console.log(`  cached, ${concurrency} connections:                          ${burstRate.toFixed(1)} requests/s  (baseline: ${(1000 / cold.ms).toFixed(1)} requests/s)`);
    console.log(`  revalidation (304):                              ${(revalidate.ms / sequential).toFixed(0)} ms/request`);
  } finally {
    await bench.stop();
  }
}

runBench(main);
