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
  ENDED_WORKER_FAILURE,
} from '../support/worker-process';
import { hasCertainlyEnded, type ProcessIdentity } from '../../lib/process-identity';
import { BATCH_EXPECTED, BATCH_RELEASE_NIX, BATCH_SIZE } from '../support/batch-of-jobs';

/**
 * Durability at scale (issue 6): kill -9 of the worker machine in the middle of 50 builds. (A file of
 * its own: with the other durability cases it would outlast the runner's 300 s per file.)
 */

describe('the worker machine dies (kill -9) in the middle of a batch of 50 builds', () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let evaluationId: string;
  const workers: ChildProcess[] = [];
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-durability-batch-'));
  let finishedBeforeKill = 0;

  before(async () => {
    stack = await startTestStack({ worker: false });
    await recordCompletedAtWrites(stack);
    repo = await makeReleaseRepo(BATCH_RELEASE_NIX);
    const jobset = await createJobset(stack, repo.url, { inputs: { nonce: nonce() } });
    workers.push(spawnWorkerProcess(stack, path.join(logDir, 'worker-1.log')));
    evaluationId = (await trigger(stack, jobset.jobsetId)).id;
  });
  after(() => tearDownKillTest({ workers, stack, repo, logDir }));

  it('the worker and its builds are killed while some builds have finished and others run', async () => {
    const evaluation = await waitForEvaluation(stack, evaluationId);
    assert.equal(evaluation.status, 'completed', evaluation.error_message);
    const { finished } = await killWorkerMidBatch(stack, evaluationId, workers[0]);
    finishedBeforeKill = finished;
    assert.ok(finishedBeforeKill < BATCH_SIZE, 'builds were still open at the kill');
  });

  it('after a new worker starts, every one of the 50 builds finishes with the right status', async () => {
    workers.push(spawnWorkerProcess(stack, path.join(logDir, 'worker-2.log')));
    const builds = await waitForBuilds(stack, evaluationId, { timeoutMs: 600_000 });
    console.error(`[durability] batch: ${finishedBeforeKill} of ${BATCH_SIZE} builds had finished at the kill`);
    assert.deepEqual(statusesOf(builds), BATCH_EXPECTED);
  });

  it('each of the 50 builds finished exactly once: one workflow run, one completion, no duplicate rows', async () => {
    await assertFinishedOnce(stack, evaluationId);
  });

  it("the killed batch ran again as soon as the new worker saw that its process had ended, not after Temporal's heartbeat timeout", async () => {
    await assertKilledBatchesRetriedOnce(stack, ENDED_WORKER_FAILURE, 'the new worker failed the attempt of the ended process');
    // Attempts of live workers may still run (the outputs' serving); none of the killed one is left recorded.
    const left: Array<{ owner: ProcessIdentity }> = await stack.db('running_activities').select('owner');
    assert.deepEqual(left.filter((r) => hasCertainlyEnded(r.owner)), [], 'no attempt of the ended worker process is left recorded as running');
  });
});
