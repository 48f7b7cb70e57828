import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WorkflowNotFoundError } from '@temporalio/client';
import { startTestStack, type TestStack } from '../support/stack';
import type { GitFixtureRepo } from '../support/git-fixture';
import { createJobset, eventually, nonce, trigger, waitForBuilds, waitForEvaluation } from '../support/pipeline';
import { makeReleaseRepo } from '../support/worker-process';
import { buildWorkflowId, derivationWorkflowId, dispatcherWorkflowId } from '../../lib/workflow-ids';
import { buildLogOf, evaluateRelease, realisationsOf, startActivityResultOf } from '../support/batches';
import { RingmasterStatus } from '../../lib/search-attributes';

/**
 * Issue 6: a batch on the only builder also realises the derivations of its evaluation that wait for
 * their turn ("extras"), and a build whose derivation is built already when it starts succeeds without
 * the derivation's workflow. With one build workflow open at a time (RINGMASTER_MAX_OPEN_BUILDS=1), the
 * first build's batch is the one that builds the other jobs, before their builds start.
 */
const marker = `extras-${nonce()}`;
const EXTRAS_NIX = `{ nonce ? "x", system ? builtins.currentSystem }:
let
  mk = name: script: derivation { inherit name system nonce; PATH = "/bin:/usr/bin"; builder = "/bin/sh"; args = [ "-c" script ]; };
in {
  a = mk "a" "echo building a; sleep 5; echo a $nonce > $out";
  b = mk "b" "echo building b; sleep 5; echo b $nonce > $out";
  c = mk "c" "echo building c; sleep 5; echo c $nonce > $out";
  d = mk "d" "echo ${marker}-d-fails; exit 1";
}
`;

/** The dispatcher's first `realiseBatch` input. */
async function firstBatchInput(stack: TestStack): Promise<{ members: unknown[]; extras?: unknown }> {
  const history = await stack.temporal.client.workflow.getHandle(dispatcherWorkflowId(stack.taskQueue)).fetchHistory();
  const scheduled = (history.events ?? []).find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'realiseBatch');
  return JSON.parse(Buffer.from(scheduled!.activityTaskScheduledEventAttributes!.input!.payloads![0].data!).toString('utf8'));
}

/** The extras the first batch's activity chose (its `batchExtras` signal to the dispatcher). */
async function extrasOfFirstBatch(stack: TestStack): Promise<string[]> {
  const history = await stack.temporal.client.workflow.getHandle(dispatcherWorkflowId(stack.taskQueue)).fetchHistory();
  const signal = (history.events ?? []).find((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'batchExtras');
  return signal ? JSON.parse(Buffer.from(signal.workflowExecutionSignaledEventAttributes!.input!.payloads![0].data!).toString('utf8')).requestIds : [];
}

describe('a batch realises the waiting derivations of its evaluation (extras)', () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let done: Record<string, Record<string, any>>;

  before(async () => {
    stack = await startTestStack({ worker: true, env: { RINGMASTER_LOCAL_MAX_JOBS: '1', RINGMASTER_MAX_OPEN_BUILDS: '1' } });
    repo = await makeReleaseRepo(EXTRAS_NIX);
    done = await waitForBuilds(stack, await evaluateRelease(stack, repo), { timeoutMs: 180_000 });
  });
  after(async () => {
    await stack?.stop();
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
  });

  it('the first batch built every job, each once; the failing one fails its own build, never built again', async () => {
    // The evaluation's own batch (no member: `realiseEvaluation`), or the first build's, took the others as extras.
    for (const job of ['a', 'b', 'c']) assert.equal(done[job].status, 'succeeded', `${job}: ${done[job].error_message}`);
    // d failed in the first build's batch, before its own build started: its build takes that failure as its own.
    assert.equal(done.d.status, 'failed', done.d.error_message);
    assert.ok(await stack.db('cached_failures').where({ drv_path: done.d.drv_path }).first(), 'the failure is cached');
    const log = await buildLogOf(stack, done.d.id);
    assert.equal(log.split(`${marker}-d-fails`).length - 1, 1, `d was built once:\n${log}`);
    // The first batch took the other jobs as extras. (A build that starts while its derivation still builds
    // there queues it too: a second batch then waits on Nix's lock and finds it built.)
    const first = await firstBatchInput(stack);
    assert.ok(first.extras, 'the first batch takes extras');
    // The evaluation asked for it as its builds started, before any derivation had queued.
    assert.equal(first.members.length, 0, 'the first batch is the evaluation\'s own, with no member');
    assert.equal((first.extras as { evaluationId?: string }).evaluationId, done.a.evaluation_id);
    assert.equal(first.members.length + (await extrasOfFirstBatch(stack)).length, 4, 'the first batch realised all four: its members and its extras');
    for (const [drv, { starts }] of await realisationsOf(stack, Object.values(done).map((b) => b.id))) assert.equal(starts.size, 1, `${drv} was realised once`);
  });

  it("each job's log is its own, and says it was built ahead of its turn", async () => {
    const ahead: string[] = [];
    for (const job of ['a', 'b', 'c']) {
      const log = await buildLogOf(stack, done[job].id);
      assert.match(log, new RegExp(`building ${job}\\b`));
      for (const other of ['a', 'b', 'c'].filter((o) => o !== job)) assert.doesNotMatch(log, new RegExp(`building ${other}\\b`), `${job}'s log holds its own lines`);
      if (/ahead of its own turn/.test(log)) ahead.push(job);
    }
    assert.ok(ahead.length >= 2, `at least two of a, b, c were built ahead of their turn (one may be the batch's member): ${ahead.join(', ')}`);
  });

  it('a derivation planned while the batch builds it as an extra waits for that batch instead of queueing it again', async () => {
    // One slot, three 5 s jobs: the next build starts once the first has finished, while the batch still builds the others.
    const history = await stack.temporal.client.workflow.getHandle(dispatcherWorkflowId(stack.taskQueue)).fetchHistory();
    const requests = (history.events ?? [])
      .filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'requestSlot')
      .map((e) => JSON.parse(Buffer.from(e.workflowExecutionSignaledEventAttributes!.input!.payloads![0].data!).toString('utf8')).requestId as string);
    // The evaluation asks for a batch of its waiting derivations as its builds start (`realiseEvaluation`):
    // that batch has no member. Only the first build's derivation may plan before the batch has recorded
    // its extras, and ask for a slot.
    const members = ((await firstBatchInput(stack)).members as Array<{ requestId: string }>).map((m) => m.requestId);
    assert.ok(new Set(requests).size <= 1, `at most one derivation asked for a slot: ${[...new Set(requests)].join(', ')}`);
    // A job's build that started while the batch still built it (or had it to build) has a derivation
    // workflow: that workflow heard its result from the batch, without queueing. (One whose build started
    // after it was built has none: the last case below. Which jobs are which depends on Nix's order.)
    for (const job of ['a', 'b', 'c']) {
      const id = derivationWorkflowId(stack.taskQueue, done[job].drv_path);
      if (members.includes(id)) continue;
      const events = await stack.temporal.client.workflow.getHandle(id).fetchHistory().then((h) => h.events ?? [], () => []);
      if (events.length === 0) continue;
      assert.ok(events.some((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'stepRealised'), `${job}'s derivation workflow heard its result from the batch`);
    }
  });

  it("a build whose derivation the evaluation's batch realises is held back: its workflow starts once that derivation has ended", async () => {
    // The start activity waits for the batch's word, then starts a build only when no running batch realises
    // its derivation. (One build may start while the evaluator is still running, before the batch exists.)
    const held: string[] = [];
    for (const job of ['a', 'b', 'c', 'd']) {
      const started = (await stack.temporal.client.workflow.getHandle(buildWorkflowId(done[job].id)).describe()).startTime;
      const step = await stack.db('build_steps').where({ build_id: done[job].id, drv_path: done[job].drv_path }).whereNotNull('completed_at').orderBy('completed_at').first();
      if (step && started.getTime() >= new Date(step.completed_at).getTime()) held.push(job);
    }
    assert.ok(held.length >= 3, `at least three builds started after their derivation had ended in the batch: ${held.join(', ')}`);
    // d's build, held back while its derivation failed in the batch, took that failure as its own (first case).
  });

  it('the batch recorded the result of a held build it built: the workflow started with it, its status attribute final, and ran no local activity', async () => {
    const recordedByBatch: string[] = [];
    for (const job of ['a', 'b', 'c']) {
      const handle = stack.temporal.client.workflow.getHandle(buildWorkflowId(done[job].id));
      const d = await handle.describe();
      if (new Date(done[job].completed_at).getTime() > d.startTime.getTime()) continue;
      const events = (await handle.fetchHistory()).events ?? [];
      const input = JSON.parse(Buffer.from(events[0].workflowExecutionStartedEventAttributes!.input!.payloads![0].data!).toString('utf8'));
      assert.equal(input.recorded, 'succeeded', `${job}'s workflow started with its recorded status`);
      assert.equal(d.typedSearchAttributes.get(RingmasterStatus), 'succeeded', `${job}'s status attribute`);
      assert.ok(!events.some((e) => e.markerRecordedEventAttributes), `${job}'s workflow ran no local activity`);
      assert.equal(await handle.result().then((r) => r.status), 'succeeded');
      recordedByBatch.push(job);
    }
    // One build may start while the evaluator still runs, before the batch exists.
    assert.ok(recordedByBatch.length >= 2, `builds finished by the batch before their workflow started: ${recordedByBatch.join(', ') || 'none'}`);
  });

  it('a build whose derivation was built before it started succeeded without a derivation workflow', async () => {
    const without: string[] = [];
    for (const job of ['a', 'b', 'c']) {
      try {
        await stack.temporal.client.workflow.getHandle(derivationWorkflowId(stack.taskQueue, done[job].drv_path)).describe();
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
        without.push(job);
      }
    }
    // With one build workflow open at a time, the next build starts once the first has finished: by then the
    // quick jobs built ahead are valid (a sleeps a second, and may still be building).
    // Held back while the batch built them (the case above), at least two of the three have none.
    assert.ok(without.length >= 2, `jobs built ahead had no derivation workflow: ${without.join(', ') || 'none'}`);
  });
  it("an evaluation waits for its batch when the builder takes it, and not when the builder's only slot is busy (the dispatcher drops the word)", async () => {
    // The first evaluation found the slot free: its start activity waited for its batch's word.
    assert.equal((await startActivityResultOf(stack, done.a.evaluation_id))?.waitedForBatch, true);

    // A jobset whose one job holds the only slot for 8 s.
    const busyRepo = await makeReleaseRepo(`{ nonce ? "x", system ? builtins.currentSystem }:
{ busy = derivation { name = "busy"; inherit system nonce; PATH = "/bin:/usr/bin"; builder = "/bin/sh"; args = [ "-c" "sleep 8; echo busy $nonce > $out" ]; }; }
`);
    const quickRepo = await makeReleaseRepo(`{ nonce ? "x", system ? builtins.currentSystem }:
{ quick = derivation { name = "quick"; inherit system nonce; PATH = "/bin:/usr/bin"; builder = "/bin/sh"; args = [ "-c" "echo quick $nonce > $out" ]; }; }
`);
    try {
      const busy = await trigger(stack, (await createJobset(stack, busyRepo.url, { inputs: { nonce: nonce() } })).jobsetId);
      await eventually('the busy job to hold the slot', async () => {
        const step = await stack.db('build_steps as s').join('builds as b', 'b.id', 's.build_id').where('b.evaluation_id', busy.id).where('s.phase', 'building').first('s.build_id');
        return step ? true : undefined;
      }, 60_000, 100);
      const quick = await trigger(stack, (await createJobset(stack, quickRepo.url, { inputs: { nonce: nonce() } })).jobsetId);
      await waitForEvaluation(stack, quick.id);
      const result = await startActivityResultOf(stack, quick.id);
      assert.equal(result?.waitedForBatch, false, 'no batch took the evaluation: its builds started without waiting for one');
      assert.equal(result?.started, 1);
      const built = await waitForBuilds(stack, quick.id, { timeoutMs: 120_000 });
      assert.equal(built.quick.status, 'succeeded');
      await waitForBuilds(stack, busy.id, { timeoutMs: 120_000 });
    } finally {
      fs.rmSync(busyRepo.dir, { recursive: true, force: true });
      fs.rmSync(quickRepo.dir, { recursive: true, force: true });
    }
  });
});
