import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import type { GitFixtureRepo } from '../support/git-fixture';
import { startSshBuilder } from '../support/sshd';
import { registerSshBuilder, type RegisteredBuilder } from '../support/builder-registration';
import { buildsOf, createJobset, eventually, nonce, trigger, waitForBuilds, waitForEvaluation } from '../support/pipeline';
import {
  assertFinishedOnce,
  isGone,
  killLikeAPowerCut,
  makeReleaseRepo,
  recordCompletedAtWrites,
  spawnWorkerProcess,
  statusesOf,
  tearDownKillTest,
} from '../support/worker-process';
import { BATCH_EXPECTED, BATCH_RELEASE_NIX, BATCH_SIZE } from '../support/batch-of-jobs';
import { readDerivation } from '../../activities/nix/drv';

/**
 * Durability over SSH (issue 6): kill -9 of the worker machine while one SSH builder realises a batch of
 * the 50 builds. The builder is a real sshd on loopback with its own chroot store; it is the only builder
 * registered, so no step builds on the worker's own Nix (the local fallback is for a server without
 * builders). The batch's remote `nix-store` must not outlive the SSH session of the worker that started it,
 * and the new worker must report what the builder had already built without building it again.
 */

/** The remote `nix-store --realise` processes of a batch on the builder. */
function remoteRealisations(builder: RegisteredBuilder): Array<{ pid: number; cmdline: string }> {
  return builder.fixture.processes().filter((p) => p.cmdline.startsWith('nix-store ') && p.cmdline.includes(' --realise '));
}

/** Whether a store path is valid in the builder's chroot store (its outputs are written there). */
function onBuilder(builder: RegisteredBuilder, storePath: string): boolean {
  return fs.existsSync(path.join(builder.fixture.storeRoot, storePath));
}

describe('the worker machine dies (kill -9) while an SSH builder realises a batch of the 50 builds', () => {
  let stack: TestStack;
  let builder: RegisteredBuilder;
  let repo: GitFixtureRepo;
  let evaluationId: string;
  const workers: ChildProcess[] = [];
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-durability-ssh-batch-'));
  /** Job → its output path, for the jobs that succeed. */
  const outputOf = new Map<string, string>();
  let killedAt = 0;
  /** Jobs whose output was valid on the builder when the worker died. */
  let builtBeforeKill = new Set<string>();
  /** The builder's processes but its sshd listener when the worker died: the killed worker's session, its batch and their sandboxed builds. */
  let sessionAtKill: Array<{ pid: number; cmdline: string }> = [];
  /** Jobs whose build had succeeded when the worker died. */
  let succeededBeforeKill = new Set<string>();

  before(async () => {
    stack = await startTestStack({ worker: false });
    await recordCompletedAtWrites(stack);
    builder = await registerSshBuilder(stack, await startSshBuilder({ name: 'power-cut' }), { maxJobs: 2 });
    repo = await makeReleaseRepo(BATCH_RELEASE_NIX);
    const jobset = await createJobset(stack, repo.url, { inputs: { nonce: nonce() } });
    workers.push(spawnWorkerProcess(stack, path.join(logDir, 'worker-1.log')));
    evaluationId = (await trigger(stack, jobset.jobsetId)).id;
  });
  after(async () => {
    await tearDownKillTest({ workers, stack, repo, logDir });
    await builder?.fixture.stop();
  });

  it('the worker is killed while a batch of at least 8 unbuilt members runs on the builder, after some builds succeeded and 5 outputs were built there, one of them not yet recorded', async () => {
    const evaluation = await waitForEvaluation(stack, evaluationId);
    assert.equal(evaluation.status, 'completed', evaluation.error_message);
    const jobOfDrv = new Map<string, string>();
    for (const build of Object.values(await buildsOf(stack, evaluationId))) {
      jobOfDrv.set(build.drv_path, build.job_name);
      if (BATCH_EXPECTED[build.job_name] === 'succeeded') outputOf.set(build.job_name, (await readDerivation(build.drv_path)).outputs.out);
    }
    const unbuiltMembers = (p: { cmdline: string }) => [...jobOfDrv].filter(([drv, job]) => p.cmdline.includes(drv) && outputOf.has(job) && !onBuilder(builder, outputOf.get(job)!));
    await eventually('a batch with 8 unbuilt members on the builder, after a build succeeded and 5 were built there, one not yet recorded', async () => {
      const builtThere = [...outputOf.values()].filter((out) => onBuilder(builder, out)).length;
      if (builtThere < 5 || !remoteRealisations(builder).some((p) => unbuiltMembers(p).length >= 8)) return undefined;
      const builds = Object.values(await buildsOf(stack, evaluationId));
      const succeeded = builds.filter((b) => b.status === 'succeeded').length;
      // A build whose output is on the builder but not yet recorded: the retry must report it without building it again.
      const builtUnrecorded = builds.some((b) => b.status !== 'succeeded' && outputOf.has(b.job_name) && onBuilder(builder, outputOf.get(b.job_name)!));
      return succeeded >= 1 && builtUnrecorded ? true : undefined;
    }, 150_000, 50);
    sessionAtKill = builder.fixture.processes().filter((p) => p.pid !== builder.fixture.pid);
    builtBeforeKill = new Set([...outputOf].filter(([, out]) => onBuilder(builder, out)).map(([job]) => job));
    killedAt = Date.now();
    await killLikeAPowerCut(workers[0]);
    const atKill = Object.values(await buildsOf(stack, evaluationId));
    succeededBeforeKill = new Set(atKill.filter((b) => b.status === 'succeeded').map((b) => b.job_name));
    assert.ok(atKill.some((b) => ['pending', 'running'].includes(b.status)), 'builds were still open at the kill');
  });

  it("the killed worker's remote nix-store does not outlive its SSH session: it stops without building the rest of its batch", async () => {
    assert.ok(sessionAtKill.some((p) => p.cmdline.startsWith('nix-store ')), 'a remote nix-store ran at the kill');
    await eventually('the killed session and its processes on the builder to be gone', async () => (sessionAtKill.every((p) => isGone(p.pid)) ? true : undefined), 60_000, 100);
    const builtAfterKill = [...outputOf].filter(([job, out]) => !builtBeforeKill.has(job) && onBuilder(builder, out)).map(([job]) => job);
    // Two builds were running at the kill (max_jobs 2); each may have ended before the stop reached it.
    assert.ok(builtAfterKill.length <= 2, `built on the builder after the kill, with no worker left: ${builtAfterKill.join(', ')}`);
    assert.deepEqual(remoteRealisations(builder), [], 'no nix-store runs on the builder');
  });

  it('after a new worker starts, every one of the 50 builds finishes with the right status, the succeeded ones on the SSH builder', async () => {
    workers.push(spawnWorkerProcess(stack, path.join(logDir, 'worker-2.log')));
    const builds = await waitForBuilds(stack, evaluationId, { timeoutMs: 180_000 });
    const unreported = [...builtBeforeKill].filter((job) => !succeededBeforeKill.has(job)).length;
    console.error(`[durability-ssh] at the kill ${builtBeforeKill.size} of ${outputOf.size} outputs were on the builder, ${unreported} of them not yet reported; ${succeededBeforeKill.size} builds had succeeded`);
    assert.deepEqual(statusesOf(builds), BATCH_EXPECTED);
    for (const [job, out] of outputOf) {
      assert.equal(builds[job].builder_id, builder.id, `${job} built on the SSH builder`);
      assert.ok(fs.existsSync(out), `${job}'s output was copied back`);
    }
  });

  it('each of the 50 builds finished exactly once: one workflow run, one completion, no duplicate rows', async () => {
    await assertFinishedOnce(stack, evaluationId);
  });

  it('a derivation already built on the builder at the kill was not realised again: its step started before the kill', async () => {
    const builds = await buildsOf(stack, evaluationId);
    for (const job of builtBeforeKill) {
      const step = await stack.db('build_steps').where({ build_id: builds[job].id, drv_path: builds[job].drv_path }).first();
      assert.equal(step.status, 'succeeded', `${job}'s step`);
      assert.equal(step.builder_id, builder.id, `${job}'s step records the builder`);
      assert.ok(new Date(step.started_at).getTime() < killedAt, `${job}'s step started at ${new Date(step.started_at).toISOString()}, after the kill`);
    }
  });

  it('no nix-store is left running on the builder once every build has finished', async () => {
    await eventually('no remote nix-store', async () => (remoteRealisations(builder).length === 0 ? true : undefined), 30_000, 200);
  });
});
