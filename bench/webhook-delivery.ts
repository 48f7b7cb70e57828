/**
 * bench/webhook-delivery: how long a forge waits for Ringmaster's answer to a push.
 *
 *   npx tsx bench/webhook-delivery.ts [N=30]
 *
 * N signed GitHub push deliveries that each start a jobset check, answered as soon as the check's workflow is
 * started, against two baselines measured in the same run on the same stack:
 * - `POST /api/v1/evaluations/trigger` of the same jobset, which waits for the check (fetch, hash, record);
 * - N signed deliveries of an event that triggers nothing (signature, parsing and the delivery row only).
 * No issue sets a goal for it: the figures are read against the baselines.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { makeGitRepo } from '../test/support/git-fixture';
import { nonce } from '../test/support/pipeline';
import { deliver, githubExamples, githubSignature, WEBHOOK_FIXTURES } from '../test/support/forge-payloads';
import { runBench, startBenchStack } from './support';

function percentile(sortedMs: number[], p: number): number {
  return sortedMs[Math.min(sortedMs.length - 1, Math.floor((p / 100) * sortedMs.length))];
}

async function timed(n: number, once: () => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await once();
    out.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return out.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 30);
  if (!Number.isInteger(n) || n <= 0 || n > 50) throw new Error(`N must be an integer in 1..50 (the per-project burst is 60), got ${process.argv[2]}`);
  const bench = await startBenchStack({ worker: true });
  const stack = bench.stack;
  const repo = await makeGitRepo(path.join(WEBHOOK_FIXTURES, 'jobset'));
  try {
    const secret = `bench-${nonce()}`;
    const project = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body: { name: `bench-${nonce()}`, repository_url: repo.url } });
    const jobset = await stack.request('POST', `/api/v1/projects/${project.body.id}/jobsets`, { key: stack.adminKey, body: { name: 'main', nix_expression: 'release.nix', branch: 'main' } });
    await stack.request('POST', `/api/v1/projects/${project.body.id}/webhooks`, { key: stack.adminKey, body: { forge_type: 'github', secret } });
    const example = githubExamples().find((e) => e.event === 'push' && e.payload.ref === 'refs/heads/master')!.payload;
    const payloadFor = (ref: string) => Buffer.from(JSON.stringify({ ...example, ref, after: repo.commit, repository: { ...example.repository, default_branch: 'main' } }));
    const send = async (body: Buffer, expected: string) => {
      const res = await deliver(stack.url, project.body.id, 'github', body, { 'x-github-event': 'push', 'x-github-delivery': crypto.randomUUID(), 'x-hub-signature-256': githubSignature(secret, body) });
      if (res.body.status !== expected) throw new Error(`expected ${expected}, got ${res.status} ${JSON.stringify(res.body)}`);
    };

    // Warm up every path once (git mirror, workflow bundle caches, prepared statements).
    await stack.request('POST', '/api/v1/evaluations/trigger', { key: stack.adminKey, body: { jobset_id: jobset.body.id } });
    await send(payloadFor('refs/heads/main'), 'triggered');
    await send(payloadFor('refs/heads/elsewhere'), 'ignored');

    const trigger = await timed(n, async () => {
      const res = await stack.request('POST', '/api/v1/evaluations/trigger', { key: stack.adminKey, body: { jobset_id: jobset.body.id } });
      if (res.status !== 202) throw new Error(`trigger: ${res.status} ${res.text}`);
    });
    await new Promise((r) => setTimeout(r, n * 1000)); // let the project’s token bucket refill (1 delivery/s)
    const ignored = await timed(n, () => send(payloadFor('refs/heads/elsewhere'), 'ignored'));
    await new Promise((r) => setTimeout(r, n * 1000));
    const triggered = await timed(n, () => send(payloadFor('refs/heads/main'), 'triggered'));

    const row = (name: string, ms: number[]) =>
      `${name.padEnd(44)} p50 ${percentile(ms, 50).toFixed(1).padStart(7)} ms   p95 ${percentile(ms, 95).toFixed(1).padStart(7)} ms   max ${ms[ms.length - 1].toFixed(1).padStart(7)} ms`;
    console.log(`webhook delivery answers, N=${n} each (sequential)`);
    console.log(row('baseline: POST /evaluations/trigger (waits)', trigger));
    console.log(row('baseline: delivery that triggers nothing', ignored));
    console.log(row('delivery that starts a jobset check', triggered));
    console.log(`ratio p50 triggered / trigger route: ${(percentile(triggered, 50) / percentile(trigger, 50)).toFixed(3)}`);
    console.log(`ratio p50 triggered / ignored delivery: ${(percentile(triggered, 50) / percentile(ignored, 50)).toFixed(2)}`);
  } finally {
    await bench.stop();
    fs.rmSync(repo.dir, { recursive: true, force: true });
  }
}

runBench(main);
