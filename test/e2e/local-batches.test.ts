import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WorkflowNotFoundError } from '@temporalio/client';
import { startTestStack, type TestStack } from '../support/stack';
import type { GitFixtureRepo } from '../support/git-fixture';
import { nonce, waitForBuilds } from '../support/pipeline';
import { makeReleaseRepo } from '../support/worker-process';
import { derivationWorkflowId } from '../../lib/workflow-ids';
import { BATCH_DAG_NIX, assertRealisedByBatchesOnly, cancelLongBesideShort, evaluateRelease, longBesideShortNix, realisationsOf } from '../support/batches';

/**
 * Issue 6: on the worker's own Nix, queued derivations are realised in batches, one `nix-store
 * --realise --keep-going` for many, each derivation's result reaching its build as soon as it ends.
 */
const marker = `batch-${nonce()}`;

describe('derivations realised in batches on the local builder', () => {
  let stack: TestStack;
  const repos: GitFixtureRepo[] = [];
  let evaluationId: string;

  before(async () => {
    stack = await startTestStack({ worker: true, env: { RINGMASTER_LOCAL_MAX_JOBS: '2' } });
    const repo = await makeReleaseRepo(BATCH_DAG_NIX);
    repos.push(repo);
    evaluationId = await evaluateRelease(stack, repo);
  });
  after(async () => {
    await stack?.stop();
    for (const repo of repos) fs.rmSync(repo.dir, { recursive: true, force: true });
  });

  it('members and their dependents are built once each; a failing member leaves the others built and its dependent dependency_failed', async () => {
    const done = await waitForBuilds(stack, evaluationId, { timeoutMs: 180_000 });
    for (const job of ['base', 'middle', 'top']) assert.equal(done[job].status, 'succeeded', `${job}: ${done[job].error_message}`);
    assert.equal(done.broken.status, 'failed');
    assert.equal(done.dependent.status, 'dependency_failed');
    assert.match(done.dependent.error_message ?? '', /broken/);
    const log = await stack.request('GET', `/api/v1/builds/${done.middle.id}/log`);
    assert.equal(log.status, 200);
    assert.match(log.text, /building middle/);
    assert.doesNotMatch(log.text, /building top/, "a member's log holds its own lines only");
    // Each derivation's step rows record one realisation, on the local builder.
    // (A row planned while the derivation built and closed with its build, never marked started, is not a realisation.)
    for (const [drv, { starts }] of await realisationsOf(stack, Object.values(done).map((b) => b.id))) assert.equal(starts.size, 1, `${drv} was realised once`);
  });

  it("a derivation queued for a batch hears its inputs' failures, never their successes (a signal and a workflow task saved per edge)", async () => {
    const done = await waitForBuilds(stack, evaluationId, { timeoutMs: 180_000 });
    const heard = async (job: string) => {
      // A job that a batch built before its build started has no derivation workflow at all (batch-extras.test.ts).
      // (None: its build started once the evaluation's batch had ended, held back meanwhile, and found its fate.)
      const history = await stack.temporal.client.workflow.getHandle(derivationWorkflowId(stack.taskQueue, done[job].drv_path)).fetchHistory().catch((err) => {
        // fetchHistory answers a missing workflow with gRPC's NOT_FOUND (5).
        if (err instanceof WorkflowNotFoundError || (err as { code?: number }).code === 5) return undefined;
        throw err;
      });
      return history && (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'derivationFinished').length;
    };
    assert.ok(!(await heard('middle')), 'middle was not told that base succeeded');
    assert.ok(!(await heard('top')), 'top was not told that middle succeeded');
    // dependent's derivation workflow, if it has one, heard broken's failure at least once (when its batch
    // leaves it unbuilt it also attaches again to hear every result, and a new run of broken, if it had
    // closed, answers with its cached failure). Without one, its build found broken's cached failure.
    const dependentHeard = await heard('dependent');
    assert.ok(dependentHeard === undefined || dependentHeard >= 1, 'dependent was told that broken failed');
    if (dependentHeard === undefined) assert.ok(await stack.db('cached_failures').where({ drv_path: done.broken.drv_path }).first(), "broken's failure was cached for dependent's build to find");
  });

  it('the dispatcher realised them with batch activities, not one slot grant per derivation', async () => {
    await assertRealisedByBatchesOnly(stack);
  });

  it('a build cancelled while its derivation builds in a batch is killed; the derivations that shared its nix-store are built all the same', async () => {
    const repo = await makeReleaseRepo(longBesideShortNix(marker));
    repos.push(repo);
    const done = await cancelLongBesideShort(stack, repo, marker, 'local-batches');
    assert.equal(done.long.status, 'cancelled');
    // Held back while the evaluation's batch built it (no workflow of its own yet) or not: no step of the
    // cancelled build is left pending or running.
    const open = await stack.db('build_steps').where({ build_id: done.long.id }).whereIn('status', ['pending', 'running']);
    assert.deepEqual(open, [], 'the cancelled build has no unfinished step');
    assert.equal(done.short.status, 'succeeded', done.short.error_message);
    assert.equal(done.short.retry_count, 0, 'short was not restarted: an interrupted derivation is queued again, unseen by its build');
  });
});
