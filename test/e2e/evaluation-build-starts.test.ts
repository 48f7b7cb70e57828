import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { temporal } from '@temporalio/proto';
import { startTestStack, type TestStack } from '../support/stack';
import type { GitFixtureRepo } from '../support/git-fixture';
import { buildsOf, createJobset, eventually, nonce, trigger, waitForEvaluation } from '../support/pipeline';
import { assertFinishedOnce, killLikeAPowerCut, makeReleaseRepo, recordCompletedAtWrites, spawnWorkerProcess, tearDownKillTest } from '../support/worker-process';
import { buildWorkflowId, evaluationWorkflowId } from '../../workflows/shared';

/**
 * An evaluation completes once its builds are recorded; their workflows start behind it
 * (startBuildWorkflowsOfEvaluation). kill -9 of the worker in the middle of those starts: the new
 * worker starts the rest, and every build is recorded once and its workflow started once.
 */

const JOBS = 300;
const RELEASE_NIX = `{ nonce ? "x" }:
builtins.listToAttrs (builtins.genList (i: { name = "s\${toString i}"; value = derivation {
  name = "s\${toString i}"; inherit nonce; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" "echo \${toString i} \${nonce} > $out" ]; }; }) ${JOBS})
`;

const startsLeft = async (stack: TestStack, evaluationId: string) =>
  Number((await stack.db('build_workflow_starts').where({ evaluation_id: evaluationId }).count<{ count: string }[]>('* as count'))[0].count);

describe('the worker dies (kill -9) while the workflows of a completed evaluation start', () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let evaluationId: string;
  const workers: ChildProcess[] = [];
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-eval-starts-'));
  const token = `starts-${nonce()}`;
  let leftAtKill = 0;

  before(async () => {
    stack = await startTestStack({ worker: false });
    await recordCompletedAtWrites(stack);
    repo = await makeReleaseRepo(RELEASE_NIX, (releaseFile) => {
      // Built beforehand, so the evaluation records every build succeeded and each workflow only confirms:
      // the test is about the starts, not the builds.
      const built = spawnSync('nix-build', [releaseFile, '--argstr', 'nonce', token, '--no-out-link', '--max-jobs', '4'], { encoding: 'utf8', maxBuffer: 64 << 20 });
      assert.equal(built.status, 0, built.stderr);
    });
    const jobset = await createJobset(stack, repo.url, { inputs: { nonce: token } });
    workers.push(spawnWorkerProcess(stack, path.join(logDir, 'worker-1.log')));
    evaluationId = (await trigger(stack, jobset.jobsetId)).id;
  });
  after(() => tearDownKillTest({ workers, stack, repo, logDir }));

  it('the evaluation is completed, with every build recorded, before all their workflows have started', async () => {
    await eventually('the evaluation to complete with some workflows started and some not', async () => {
      const evaluation = await stack.db('evaluations').where({ id: evaluationId }).first();
      if (evaluation.status === 'failed') throw new Error(`evaluation failed: ${evaluation.error_message}`);
      if (evaluation.status !== 'completed') return undefined;
      const left = await startsLeft(stack, evaluationId);
      if (left === 0) throw new Error('every workflow had started before the kill');
      return left < JOBS ? true : undefined;
    }, 240_000, 20);
    await killLikeAPowerCut(workers[0]);
    leftAtKill = await startsLeft(stack, evaluationId);
    const builds = await buildsOf(stack, evaluationId);
    assert.equal(Object.keys(builds).length, JOBS, 'every build recorded when the evaluation completed');
    assert.ok(leftAtKill > 0 && leftAtKill < JOBS, `${leftAtKill} of ${JOBS} workflows still to start at the kill`);
  });

  it('a new worker starts the rest: every build workflow runs once and closes', async () => {
    workers.push(spawnWorkerProcess(stack, path.join(logDir, 'worker-2.log')));
    await eventually('every workflow to start', async () => ((await startsLeft(stack, evaluationId)) === 0 ? true : undefined), 240_000, 500);
    const evaluationHandle = stack.temporal.client.workflow.getHandle(evaluationWorkflowId(evaluationId));
    const result = await evaluationHandle.result();
    assert.equal(result.status, 'completed');
    assert.equal(result.jobs, JOBS);
    const builds = await buildsOf(stack, evaluationId);
    await eventually('every build workflow to close', async () => {
      for (const b of Object.values(builds)) {
        const d = await stack.temporal.client.workflow.getHandle(buildWorkflowId(b.id)).describe();
        if (d.status.name === 'RUNNING') return undefined;
      }
      return true;
    }, 240_000, 1000);
    console.error(`[evaluation-build-starts] ${leftAtKill} of ${JOBS} workflows were still to start at the kill`);
  });

  it('each build was recorded once, succeeded, and its workflow started and finished exactly once', async () => {
    const rows = await stack.db('builds').where({ evaluation_id: evaluationId });
    assert.equal(rows.length, JOBS);
    assert.equal(new Set(rows.map((r) => r.job_name)).size, JOBS);
    assert.ok(rows.every((r) => r.status === 'succeeded'), 'every build succeeded');
    await assertFinishedOnce(stack, evaluationId);
    // One run per build ID, found by the search attributes each build workflow carries (a start repeated
    // after the build's first run had closed would have made a second run under the same ID).
    const query = `WorkflowType = "BuildWorkflow" AND RingmasterEvaluationId = "${evaluationId}"`;
    await eventually('visibility to list every build workflow', async () => ((await stack.temporal.client.workflow.count(query)).count >= JOBS ? true : undefined), 60_000, 500);
    const runs = new Map<string, number>();
    for await (const wf of stack.temporal.client.workflow.list({ query })) runs.set(wf.workflowId, (runs.get(wf.workflowId) ?? 0) + 1);
    assert.equal(runs.size, JOBS, 'a workflow per build');
    assert.deepEqual([...runs.values()].filter((n) => n !== 1), [], 'one run per build');
    assert.deepEqual(new Set(runs.keys()), new Set(rows.map((r) => buildWorkflowId(r.id))));
  });

  it('the evaluation completed as its builds were recorded: completed_at comes before the recording activity reported, and the bookkeeping after kept it', async () => {
    const history = await stack.temporal.client.workflow.getHandle(evaluationWorkflowId(evaluationId)).fetchHistory();
    const EventType = temporal.api.enums.v1.EventType;
    const recorded = (history.events ?? []).find((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED);
    assert.ok(recorded?.eventTime, 'evaluateAndRecord completed');
    const reportedAt = Number(recorded.eventTime.seconds) * 1000 + Math.floor((recorded.eventTime.nanos ?? 0) / 1e6);
    const evaluation = await stack.db('evaluations').where({ id: evaluationId }).first();
    assert.equal(evaluation.status, 'completed');
    assert.equal(evaluation.nr_jobs, JOBS);
    assert.ok(evaluation.completed_at.getTime() <= reportedAt, `completed at ${evaluation.completed_at.toISOString()}, evaluateAndRecord reported at ${new Date(reportedAt).toISOString()}`);
  });

  it("the evaluation's history does not grow with its builds", async () => {
    const history = await stack.temporal.client.workflow.getHandle(evaluationWorkflowId(evaluationId)).fetchHistory();
    const events = history.events ?? [];
    assert.ok(events.length < 60, `${events.length} events for ${JOBS} builds`);
    const EventType = temporal.api.enums.v1.EventType;
    const scheduled = events.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name);
    assert.deepEqual(scheduled, ['evaluateAndRecord', 'startBuildWorkflowsOfEvaluation']);
  });
});
