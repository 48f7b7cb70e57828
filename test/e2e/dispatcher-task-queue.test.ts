import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { startTestStack, type TestStack } from '../support/stack';
import type { GitFixtureRepo } from '../support/git-fixture';
import { createJobset, eventually, nonce, trigger, waitForBuilds } from '../support/pipeline';
import { makeReleaseRepo } from '../support/worker-process';
import { dispatcherWorkflowId } from '../../workflows/shared';
import { dispatcherTaskQueue } from '../../lib/task-queues';
import type { DispatcherState } from '../../workflows/dispatcher';

/**
 * Issue 6: the dispatcher runs on a task queue of its own (`<taskQueue>-dispatch`), polled by a second
 * worker in every worker process, so its workflow tasks never queue behind the builds' and derivations'.
 */
const RELEASE_NIX = `{ nonce ? "x", system ? builtins.currentSystem }:
let
  mk = name: derivation { inherit name system nonce; PATH = "/bin:/usr/bin"; builder = "/bin/sh"; args = [ "-c" "echo \${name} $nonce > $out" ]; };
in { one = mk "one"; two = mk "two"; }
`;
const EventType = temporal.api.enums.v1.EventType;

describe("the dispatcher's own task queue", () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let jobsetId: string;

  before(async () => {
    stack = await startTestStack({ worker: true, env: { RINGMASTER_LOCAL_MAX_JOBS: '2' } });
    repo = await makeReleaseRepo(RELEASE_NIX);
  });
  after(async () => {
    await stack?.stop();
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
  });

  const buildAJobset = async () => {
    jobsetId = (await createJobset(stack, repo.url, { inputs: { nonce: nonce() } })).jobsetId;
    const evaluation = await trigger(stack, jobsetId);
    const builds = await waitForBuilds(stack, evaluation.id, { timeoutMs: 180_000 });
    assert.deepEqual(Object.fromEntries(Object.entries(builds).map(([job, b]) => [job, b.status])), { one: 'succeeded', two: 'succeeded' });
  };

  it('a worker that starts runs its first workflow tasks before any work: the dispatcher runs on <taskQueue>-dispatch, and a system probe completed on the main queue', async () => {
    await stack.workerWarmedUp();
    const description = await stack.temporal.client.workflow.getHandle(dispatcherWorkflowId(stack.taskQueue)).describe();
    assert.equal(description.status.name, 'RUNNING');
    assert.equal(description.taskQueue, dispatcherTaskQueue(stack.taskQueue));
    // Its first task has run: it loaded the builders (a local activity) before any build asked for a slot.
    const history = await stack.temporal.client.workflow.getHandle(dispatcherWorkflowId(stack.taskQueue)).fetchHistory();
    assert.ok(history.events!.some((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED), 'the dispatcher ran a workflow task');
    assert.equal(await stack.db('builds').count('* as n').first().then((r) => Number(r!.n)), 0, 'no build exists yet');
    // Visibility trails the workflow by up to 250 ms (the dev server reads its visibility queue 4 times a
    // second): a probe that has closed can still be listed with its start record (RUNNING) for a moment.
    const probes = await eventually('the probe to be listed with its close record', async () => {
      const found: string[] = [];
      for await (const wf of stack.temporal.client.workflow.list({ query: `WorkflowType = 'SystemProbeWorkflow' AND TaskQueue = '${stack.taskQueue}'` })) found.push(wf.status.name);
      return found.length > 0 && !found.includes('RUNNING') ? found : undefined;
    }, 30_000, 300);
    assert.deepEqual(probes, ['COMPLETED']);
  });

  it('the dispatcher that the worker started runs on <taskQueue>-dispatch, and grants the builds their slots', async () => {
    await buildAJobset();
    const description = await stack.temporal.client.workflow.getHandle(dispatcherWorkflowId(stack.taskQueue)).describe();
    assert.equal(description.status.name, 'RUNNING');
    assert.equal(description.taskQueue, dispatcherTaskQueue(stack.taskQueue));
  });

  it('a dispatcher running on the main task queue (started before it had a queue of its own) continues as new onto its own queue, with its state', async () => {
    const id = dispatcherWorkflowId(stack.taskQueue);
    await stack.temporal.client.workflow.getHandle(id).terminate('the test starts one as an older release did');
    // As an older release started it: on the main task queue, with state from an earlier run.
    const state: DispatcherState = { queue: [], running: {}, usage: { 'jobset-of-an-earlier-run': 7 }, seq: 41 };
    const old = await stack.temporal.client.workflow.start('DispatcherWorkflow', { taskQueue: stack.taskQueue, workflowId: id, args: [state] });

    const moved = await eventually('the dispatcher to run on its own task queue', async () => {
      const d = await stack.temporal.client.workflow.getHandle(id).describe();
      return d.runId !== old.firstExecutionRunId && d.status.name === 'RUNNING' ? d : undefined;
    }, 60_000, 200);
    assert.equal(moved.taskQueue, dispatcherTaskQueue(stack.taskQueue));

    const first = await stack.temporal.client.workflow.getHandle(id, old.firstExecutionRunId).describe();
    assert.equal(first.status.name, 'CONTINUED_AS_NEW');
    const events = (await stack.temporal.client.workflow.getHandle(id, old.firstExecutionRunId).fetchHistory()).events ?? [];
    // A patch marker's details carry its ID in their payloads' data.
    const markerTexts = events
      .filter((e) => e.eventType === EventType.EVENT_TYPE_MARKER_RECORDED)
      .map((e) => Object.values(e.markerRecordedEventAttributes?.details ?? {}).flatMap((d) => (d.payloads ?? []).map((p) => Buffer.from(p.data ?? []).toString('utf8'))).join(' '));
    assert.ok(markerTexts.some((t) => t.includes('dispatcher-runs-on-its-own-task-queue')), `the move is gated by its patch marker (markers: ${markerTexts.join('; ')})`);
    const continued = events.find((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW)?.workflowExecutionContinuedAsNewEventAttributes;
    assert.equal(continued?.taskQueue?.name, dispatcherTaskQueue(stack.taskQueue));
    const carried = defaultPayloadConverter.fromPayload<DispatcherState>(continued!.input!.payloads![0]);
    assert.equal(carried.seq, 41);
    assert.deepEqual(carried.usage, { 'jobset-of-an-earlier-run': 7 });

    // The moved dispatcher serves the next builds.
    await buildAJobset();
    const after = await stack.temporal.client.workflow.getHandle(id).describe();
    assert.equal(after.runId, moved.runId, 'still the run on its own queue');
  });
});
