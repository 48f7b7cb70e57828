import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import type { GitFixtureRepo } from '../support/git-fixture';
import { startSshBuilder } from '../support/sshd';
import { registerSshBuilder, type RegisteredBuilder } from '../support/builder-registration';
import { nonce, waitForBuilds } from '../support/pipeline';
import { makeReleaseRepo } from '../support/worker-process';
import { BATCH_DAG_NIX, assertRealisedByBatchesOnly, buildLogOf, builderBuildingSlow, cancelLongBesideShort, evaluateRelease, longBesideShortNix, realisationsOf, startLostBatchStand, type LostBatchStand } from '../support/batches';

/**
 * Issue 6: an SSH builder realises batches too. One `realiseBatch` activity per batch copies what the
 * builder lacks once, runs one `nix-store --realise --keep-going` there over one SSH channel, and tells
 * each derivation its result as soon as its outputs are back here. Real sshd builders on loopback, each
 * with its own chroot store.
 */
const marker = `ssh-batch-${nonce()}`;
const mkLine = 'mk = name: script: extra: derivation ({ inherit name system nonce; PATH = "/bin:/usr/bin"; builder = "/bin/sh"; args = [ "-c" script ]; } // extra);';

describe('derivations realised in batches on an SSH builder', () => {
  let stack: TestStack;
  let builder: RegisteredBuilder;
  const repos: GitFixtureRepo[] = [];
  let evaluationId: string;

  before(async () => {
    stack = await startTestStack({ worker: true });
    builder = await registerSshBuilder(stack, await startSshBuilder({ name: 'batcher' }), { maxJobs: 2 });
    const repo = await makeReleaseRepo(BATCH_DAG_NIX);
    repos.push(repo);
    evaluationId = await evaluateRelease(stack, repo);
  });
  after(async () => {
    await stack?.stop();
    await builder?.fixture.stop();
    for (const repo of repos) fs.rmSync(repo.dir, { recursive: true, force: true });
  });

  it('members and their dependents are built once each on the builder, their outputs brought back; a failing member leaves the others built (--keep-going) and its dependent dependency_failed', async () => {
    const done = await waitForBuilds(stack, evaluationId, { timeoutMs: 180_000 });
    for (const job of ['base', 'middle', 'top']) {
      assert.equal(done[job].status, 'succeeded', `${job}: ${done[job].error_message}`);
      assert.equal(done[job].builder_id, builder.id, `${job} ran on the SSH builder`);
      assert.ok(fs.existsSync(path.join(builder.fixture.storeRoot, done[job].build_output_path)), `${job} was built in the builder's store`);
      assert.ok(fs.existsSync(done[job].build_output_path), `${job}'s output was copied back`);
    }
    assert.match(fs.readFileSync(done.top.build_output_path, 'utf8'), /^base /);
    assert.equal(done.broken.status, 'failed');
    assert.equal(done.dependent.status, 'dependency_failed');
    assert.match(done.dependent.error_message ?? '', /broken/);
    const middleLog = await buildLogOf(stack, done.middle.id);
    assert.match(middleLog, /building middle/);
    assert.match(middleLog, new RegExp(`on builder ${builder.fixture.spec.name}, in a batch`));
    assert.doesNotMatch(middleLog, /building top/, "a member's log holds its own lines only");
    assert.match(await buildLogOf(stack, done.broken.id), /about to fail/);
    for (const [drv, { starts, builderIds }] of await realisationsOf(stack, Object.values(done).map((b) => b.id))) {
      assert.equal(starts.size, 1, `${drv} was realised once`);
      assert.deepEqual([...builderIds], [builder.id], `${drv}'s steps record the builder`);
    }
  });

  it('the dispatcher realised them with batch activities, not one slot grant per derivation', async () => {
    await assertRealisedByBatchesOnly(stack);
  });

  it("a build cancelled while its derivation builds in a batch on the builder is killed there; the derivations that shared its nix-store are built all the same", async () => {
    const repo = await makeReleaseRepo(longBesideShortNix(marker));
    repos.push(repo);
    const done = await cancelLongBesideShort(stack, repo, marker, 'ssh-batches');
    assert.equal(done.long.status, 'cancelled');
    assert.equal(done.short.status, 'succeeded', done.short.error_message);
    assert.equal(done.short.builder_id, builder.id);
    assert.equal(done.short.retry_count, 0, 'short was not restarted: an interrupted derivation is queued again, unseen by its build');
  });
});

describe('an SSH builder lost in the middle of a batch', () => {
  let stand: LostBatchStand;
  let stack: TestStack;
  let evaluationId: string;
  let killed: RegisteredBuilder;
  let survivor: RegisteredBuilder;

  before(async () => {
    stand = await startLostBatchStand(['doomed', 'spare'], marker);
    ({ stack, evaluationId } = stand);
  });
  after(() => stand?.stop());

  it('the batch is found building on one builder, which is then killed (sshd and every process under it)', async () => {
    ({ building: killed, other: survivor } = await builderBuildingSlow(stack, evaluationId, stand.builders, marker));
    await killed.fixture.kill();
  });

  it('its unfinished members are retried on the other builder and succeed; the lost builder is backed off', async () => {
    const done = await waitForBuilds(stack, evaluationId, { timeoutMs: 180_000 });
    for (const job of ['slow', 'after', 'beside']) assert.equal(done[job].status, 'succeeded', `${job}: ${done[job].error_message}`);
    assert.equal(done.slow.builder_id, survivor.id, 'slow ran again on the surviving builder');
    assert.equal(done.after.builder_id, survivor.id, 'its dependent too');
    assert.match(fs.readFileSync(done.after.build_output_path, 'utf8'), /^slow .*\nafter/);
    const slowLog = await buildLogOf(stack, done.slow.id);
    assert.match(slowLog, /builder failure: .*retried elsewhere/);
    assert.match(slowLog, new RegExp(`on builder ${survivor.fixture.spec.name}\\b`));
    const row = (await stack.request('GET', `/api/v1/admin/builders/${killed.id}`, { key: stack.adminKey })).body;
    assert.ok(row.consecutive_failures >= 1, `consecutive_failures is ${row.consecutive_failures}`);
    assert.ok(row.last_failure, 'the failure is recorded');
    assert.equal(done.slow.retry_count, 0, 'the build was not restarted: its derivation queued again');
  });
});

describe("a batch's limits on an SSH builder", () => {
  const LOG_LIMIT_BYTES = 20_000;
  let stack: TestStack;
  let builder: RegisteredBuilder;
  let repo: GitFixtureRepo;

  before(async () => {
    stack = await startTestStack({ worker: true, env: { RINGMASTER_LOG_LIMIT_BYTES: String(LOG_LIMIT_BYTES) } });
    builder = await registerSshBuilder(stack, await startSshBuilder({ name: 'limits' }), { maxJobs: 2 });
    repo = await makeReleaseRepo(`{ nonce ? "x", system ? builtins.currentSystem }:
let ${mkLine}
in {
  sleepy = mk "sleepy" "sleep 20; echo late > $out" {} // { meta = { timeout = 2; }; };
  loud = mk "loud" "i=0; while [ $i -lt 2000 ]; do echo \\"loud line $i: far more log than the limit allows\\"; i=$((i+1)); done; echo loud > $out" {};
  quiet = mk "quiet" "echo quiet says $nonce; echo quiet > $out" {};
}
`);
  });
  after(async () => {
    await stack?.stop();
    await builder?.fixture.stop();
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
  });

  it("a member past its meta.timeout ends as timeout (Nix's --timeout on the builder), one past the log limit as log_limit_exceeded; the others succeed", async () => {
    const done = await waitForBuilds(stack, await evaluateRelease(stack, repo), { timeoutMs: 120_000 });
    assert.equal(done.sleepy.status, 'timeout', done.sleepy.error_message);
    const sleptMs = new Date(done.sleepy.completed_at).getTime() - new Date(done.sleepy.started_at).getTime();
    assert.ok(sleptMs < 15_000, `the 20 s sleep was stopped early (the build took ${sleptMs} ms)`);
    assert.equal(done.loud.status, 'log_limit_exceeded', done.loud.error_message);
    const loudLog = await buildLogOf(stack, done.loud.id);
    assert.match(loudLog, /loud line 0:/);
    assert.ok(Buffer.byteLength(loudLog) < LOG_LIMIT_BYTES + 4096, `the stored log has ${Buffer.byteLength(loudLog)} bytes`);
    assert.equal(done.quiet.status, 'succeeded', done.quiet.error_message);
    assert.equal(done.quiet.builder_id, builder.id);
    assert.equal(done.quiet.retry_count, 0, 'quiet was not restarted (had it shared the stopped nix-store, it queued again)');
  });
});
