import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import type { GitFixtureRepo } from '../support/git-fixture';
import { buildsOf, createJobset, eventually, nonce, trigger, waitForBuilds, waitForEvaluation } from '../support/pipeline';
import {
  assertFinishedOnce,
  descendantsOf,
  killLikeAPowerCut,
  recordCompletedAtWrites,
  spawnWorkerProcess,
  statusesOf,
  makeReleaseRepo,
  tearDownKillTest,
  retriedBatches,
  LAPSED_LEASE_FAILURE,
} from '../support/worker-process';
import { thisProcessIdentity, type ProcessIdentity } from '../../lib/process-identity';
import { BATCH_EXPECTED, BATCH_RELEASE_NIX, BATCH_SIZE } from '../support/batch-of-jobs';

/**
 * Issue 6: a worker in another container (here, a PID namespace of its own: `unshare --pid --fork
 * --mount-proc`) is killed in the middle of a batch. The worker that takes over cannot look its PID up; it
 * tells that the process is gone by its lease (worker/ended-workers.ts), which lapses 8 s after the last
 * renewal here (RINGMASTER_WORKER_LEASE_SECONDS), and fails the batch so that it runs again before its
 * 20 s heartbeat timeout would. (A file of its own: a kill test takes a minute or two.)
 */

const LEASE_SECONDS = 8;

describe('a worker in a PID namespace of its own dies (kill -9) in the middle of a batch', () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let evaluationId: string;
  const workers: ChildProcess[] = [];
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-durability-namespace-'));

  before(async () => {
    stack = await startTestStack({ worker: false });
    await recordCompletedAtWrites(stack);
    repo = await makeReleaseRepo(BATCH_RELEASE_NIX);
    const jobset = await createJobset(stack, repo.url, { inputs: { nonce: nonce() } });
    workers.push(
      spawnWorkerProcess(stack, path.join(logDir, 'worker-1.log'), {
        wrap: ['unshare', '--pid', '--fork', '--mount-proc'],
        env: { RINGMASTER_WORKER_LEASE_SECONDS: String(LEASE_SECONDS) },
      }),
    );
    evaluationId = (await trigger(stack, jobset.jobsetId)).id;
  });
  after(() => tearDownKillTest({ workers, stack, repo, logDir }));

  it('the worker runs in another PID namespace and keeps a lease; it is killed while a batch builds', async () => {
    const evaluation = await waitForEvaluation(stack, evaluationId);
    assert.equal(evaluation.status, 'completed', evaluation.error_message);
    const leases: Array<{ owner: ProcessIdentity }> = await stack.db('worker_leases').select('owner');
    assert.equal(leases.length, 1, 'one worker, one lease');
    const self = thisProcessIdentity()!;
    assert.notEqual(leases[0].owner.pidNamespace, self.pidNamespace, 'the worker is in a PID namespace of its own: its PID cannot be looked up from here');
    await eventually('a build to finish and a step to be building', async () => {
      const builds = Object.values(await buildsOf(stack, evaluationId));
      const finished = builds.filter((b) => !['pending', 'running'].includes(b.status)).length;
      const building = await stack.db('build_steps as s').join('builds as b', 'b.id', 's.build_id').where({ 'b.evaluation_id': evaluationId, 's.status': 'running', 's.phase': 'building' }).first();
      return finished >= 1 && building && descendantsOf(workers[0].pid!).some((p) => p.cmdline.startsWith('nix-store --realise')) ? true : undefined;
    }, 300_000, 50);
    const killed = await killLikeAPowerCut(workers[0]);
    assert.ok(killed.some((p) => p.cmdline.startsWith('nix-store --realise')), 'a nix-store was among the killed');
    const open = Object.values(await buildsOf(stack, evaluationId)).filter((b) => ['pending', 'running'].includes(b.status)).length;
    assert.ok(open > 0, 'builds were still open at the kill');
    console.error(`[durability] other namespace: ${BATCH_SIZE - open} of ${BATCH_SIZE} builds had finished at the kill`);
  });

  it('after a worker starts in this namespace, every one of the 50 builds finishes with the right status, exactly once', async () => {
    workers.push(spawnWorkerProcess(stack, path.join(logDir, 'worker-2.log')));
    const builds = await waitForBuilds(stack, evaluationId, { timeoutMs: 600_000 });
    assert.deepEqual(statusesOf(builds), BATCH_EXPECTED);
    await assertFinishedOnce(stack, evaluationId);
  });

  it("the killed batch ran again because the dead worker's lease lapsed, not after Temporal's heartbeat timeout", async () => {
    const retried = await retriedBatches(stack);
    assert.ok(retried.length >= 1, 'a batch was running at the kill, and ran again');
    for (const r of retried) {
      assert.equal(r.attempt, 2, 'each killed batch ran again once');
      assert.match(r.lastFailure, LAPSED_LEASE_FAILURE, 'the new worker failed the attempt by its lapsed lease (a heartbeat timeout would say "activity Heartbeat timeout")');
    }
    const self = thisProcessIdentity()!;
    const leases: Array<{ owner: ProcessIdentity; owner_key: string }> = await stack.db('worker_leases').select('owner', 'owner_key');
    const killed = leases.filter((l) => l.owner.pidNamespace !== self.pidNamespace);
    assert.equal(killed.length, 1, "the killed worker's lapsed lease is kept for a while (an hour)");
    assert.deepEqual(await stack.db('running_activities').where({ owner_key: killed[0].owner_key }), [], 'no attempt of the killed worker is left recorded');
  });
});
