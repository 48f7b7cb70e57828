import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import type { GitFixtureRepo } from '../support/git-fixture';
import { createJobset, nonce, trigger, waitForBuilds, waitForEvaluation } from '../support/pipeline';
import {
  assertFinishedOnce,
  killWorkerMidBatch,
  recordCompletedAtWrites,
  spawnWorkerProcess,
  statusesOf,
  makeReleaseRepo,
  tearDownKillTest,
  assertKilledBatchesRetriedOnce,
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
  /** The leases of worker processes in another PID namespace than this test's. */
  const leasesElsewhere = async () => {
    const leases: Array<{ owner: ProcessIdentity; owner_key: string }> = await stack.db('worker_leases').select('owner', 'owner_key');
    return leases.filter((l) => l.owner.pidNamespace !== thisProcessIdentity()!.pidNamespace);
  };

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
    assert.equal((await stack.db('worker_leases')).length, 1, 'one worker, one lease');
    assert.equal((await leasesElsewhere()).length, 1, 'the worker is in a PID namespace of its own: its PID cannot be looked up from here');
    const { open } = await killWorkerMidBatch(stack, evaluationId, workers[0]);
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
    await assertKilledBatchesRetriedOnce(stack, LAPSED_LEASE_FAILURE, 'the new worker failed the attempt by its lapsed lease');
    const killed = await leasesElsewhere();
    assert.equal(killed.length, 1, "the killed worker's lapsed lease is kept for a while (an hour)");
    assert.deepEqual(await stack.db('running_activities').where({ owner_key: killed[0].owner_key }), [], 'no attempt of the killed worker is left recorded');
  });
});
