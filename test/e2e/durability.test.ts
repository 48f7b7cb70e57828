import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import type { GitFixtureRepo } from '../support/git-fixture';
import { buildsOf, createJobset, eventually, nonce, sleep, trigger, waitForBuilds, waitForEvaluation } from '../support/pipeline';
import { freePort } from '../../lib/processes';
import { findTemporalCli, MISSING_CLI_MESSAGE, startTemporalDevServer, type RunningDevServer } from '../../lib/temporal-dev-server';
import type { temporal } from '@temporalio/proto';
import { derivationWorkflowId, dispatcherWorkflowId } from '../../workflows/shared';
import {
  assertFinishedOnce,
  descendantsOf,
  isGone,
  killLikeAPowerCut,
  makeReleaseRepo,
  recordCompletedAtWrites,
  spawnWorkerProcess,
  statusesOf,
  tearDownKillTest,
  retriedBatches,
  ENDED_WORKER_FAILURE,
} from '../support/worker-process';

/**
 * Durability on real parts: the worker machine dies (kill -9 of the worker and every process it
 * started, nix-store and the builder included) and the Temporal dev server restarts on its SQLite
 * file, both while builds run. Either way every build finishes, once, with the right status.
 */

/** A chain one → two → three of jobs that each sleep 4 s, and a job that sleeps and then fails. */
const SLEEPY_RELEASE_NIX = `{ nonce ? "x", system ? builtins.currentSystem }:
let
  job = name: script: attrs: derivation ({
    inherit name system nonce;
    PATH = "/bin:/usr/bin";
    builder = "/bin/sh";
    args = [ "-c" script ];
  } // attrs);
  one = job "one" ''sleep 4; echo "$nonce one" > $out'' { };
  two = job "two" ''sleep 4; read line < $one; echo "$line two" > $out'' { inherit one; };
  three = job "three" ''sleep 4; read line < $two; echo "$line three" > $out'' { inherit two; };
  broken = job "broken" ''sleep 4; echo "broken is failing on purpose" >&2; exit 1'' { };
in
{ inherit one two three broken; }
`;
const EXPECTED = { one: 'succeeded', two: 'succeeded', three: 'succeeded', broken: 'failed' };

const makeSleepyRepo = () => makeReleaseRepo(SLEEPY_RELEASE_NIX);

/** The attempt numbers with which the derivation's realiseStep activity started (the last one is the one that counted). */
async function realiseAttempts(stack: TestStack, drvPath: string, dependents: string[] = []): Promise<number[]> {
  // A step is realised by its derivation's realiseStep activity, or (on the worker's own Nix, issue 6) by
  // a realiseBatch activity of the dispatcher whose members include it, or one of its dependents (Nix
  // builds a member's missing inputs along), or by the evaluation's own batch, which takes it as an extra.
  const attemptsIn = async (workflowId: string, realises: (e: temporal.api.history.v1.IHistoryEvent) => boolean) => {
    // A build held back while a batch built its derivation has no derivation workflow (gRPC NOT_FOUND).
    const history = await stack.temporal.client.workflow.getHandle(workflowId).fetchHistory().catch((err) => {
      if ((err as { code?: number }).code === 5) return { events: [] };
      throw err;
    });
    const events = history.events ?? [];
    const scheduled = new Set(events.filter(realises).map((e) => String(e.eventId)));
    return events
      .filter((e) => e.activityTaskStartedEventAttributes && scheduled.has(String(e.activityTaskStartedEventAttributes.scheduledEventId)))
      .map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 0);
  };
  const own = await attemptsIn(derivationWorkflowId(stack.taskQueue, drvPath), (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'realiseStep');
  if (own.length > 0) return own;
  return attemptsIn(dispatcherWorkflowId(stack.taskQueue), (e) => {
    const a = e.activityTaskScheduledEventAttributes;
    const input = (a?.input?.payloads ?? []).map((p) => Buffer.from(p.data ?? []).toString()).join('');
    // The evaluation's own batch (`realiseEvaluation`: no member, its waiting derivations as extras) names none of them.
    return a?.activityType?.name === 'realiseBatch' && ([drvPath, ...dependents].some((d) => input.includes(d)) || input.includes('"evaluationId"'));
  });
}

async function waitForBuildingStep(stack: TestStack, buildId: string): Promise<void> {
  await eventually(`a step of build ${buildId} to be building`, async () => {
    const step = await stack.db('build_steps').where({ build_id: buildId, status: 'running', phase: 'building' }).first();
    return step ? true : undefined;
  }, 90_000, 100);
}

describe('the worker machine dies (kill -9) while builds run', () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let evaluationId: string;
  const workers: ChildProcess[] = [];
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-durability-'));
  let killedAt = 0;

  before(async () => {
    stack = await startTestStack({ worker: false });
    await recordCompletedAtWrites(stack);
    repo = await makeSleepyRepo();
    const jobset = await createJobset(stack, repo.url, { inputs: { nonce: nonce() } });
    workers.push(spawnWorkerProcess(stack, path.join(logDir, 'worker-1.log')));
    evaluationId = (await trigger(stack, jobset.jobsetId)).id;
  });
  after(() => tearDownKillTest({ workers, stack, repo, logDir }));

  it('killing the worker with its whole process tree while the first sleep runs takes the Nix build with it', async () => {
    const evaluation = await waitForEvaluation(stack, evaluationId);
    assert.equal(evaluation.status, 'completed', evaluation.error_message);
    const one = (await buildsOf(stack, evaluationId)).one;
    await waitForBuildingStep(stack, one.id);
    await eventually('the builder sleep to run under the worker', async () => (descendantsOf(workers[0].pid!).some((p) => p.cmdline.startsWith('sleep 4')) ? true : undefined), 20_000, 50);
    const killed = await killLikeAPowerCut(workers[0]);
    killedAt = Date.now();
    assert.ok(killed.some((p) => p.cmdline.startsWith('nix-store --realise')), `nix-store was among the killed: ${killed.map((p) => p.cmdline).join(' | ')}`);
    assert.ok(killed.some((p) => p.cmdline.startsWith('sleep 4')), 'the builder was among the killed');
    await eventually('every killed process to be gone', async () => (killed.every((p) => isGone(p.pid)) ? true : undefined), 5_000, 50);
    const builds = await buildsOf(stack, evaluationId);
    assert.ok(Object.values(builds).every((b) => ['pending', 'running'].includes(b.status)), 'nothing finished before the kill');
  });

  it('after a new worker process starts, every build finishes with the right status', async () => {
    workers.push(spawnWorkerProcess(stack, path.join(logDir, 'worker-2.log')));
    const builds = await waitForBuilds(stack, evaluationId, { timeoutMs: 120_000 });
    const recoveredIn = (Date.now() - killedAt) / 1000;
    console.error(`[durability] worker kill -9 → all builds finished in ${recoveredIn.toFixed(1)} s`);
    assert.deepEqual(statusesOf(builds), EXPECTED);
    assert.match(fs.readFileSync(builds.three.build_output_path, 'utf8'), / one two three/);
    // The killed step was retried once, by the new worker (as soon as it saw that the killed worker's process
    // had ended: worker/ended-workers.ts).
    // (In batches, later batches may realise its dependents: they ran once each. Their activities are listed in
    // the order they ended, so the killed batch's retry may come after a later batch. Two batches may have
    // been running at the kill, depending on when the chain's members queued: `one` alone, then the others,
    // whose nix-store builds `one` along; each killed batch is retried once.)
    const attempts = await realiseAttempts(stack, builds.one.drv_path, [builds.two.drv_path, builds.three.drv_path]);
    console.error(`[durability] attempts of the realisations of the chain: ${attempts.join(', ')}`);
    assert.ok(attempts.some((a) => a === 2), `a killed realisation was retried: attempts ${attempts}`);
    assert.ok(attempts.every((a) => a === 1 || a === 2), `none was retried more than once: attempts ${attempts}`);
    const step = await stack.db('build_steps').where({ build_id: builds.one.id, drv_path: builds.one.drv_path }).first();
    assert.ok(new Date(step.started_at).getTime() >= killedAt, 'the step that counted started after the kill');
    assert.equal(step.status, 'succeeded');
    // Each killed batch ran again because the new worker failed the attempt of the ended process, not
    // because Temporal's heartbeat timeout (20 s) ran out.
    const retried = await retriedBatches(stack);
    assert.ok(retried.length >= 1, 'a killed batch ran again');
    for (const r of retried) assert.match(r.lastFailure, ENDED_WORKER_FAILURE);
  });

  it('each build finished exactly once: one workflow run, one completion, no duplicate rows', async () => {
    await assertFinishedOnce(stack, evaluationId);
  });
});

describe('the Temporal dev server restarts on the same SQLite file while builds run', () => {
  let server: RunningDevServer | undefined;
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let evaluationId: string;
  let restartedAt = 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-temporal-restart-'));
  let port = 0;
  let cli = '';
  const startServer = async () =>
    startTemporalDevServer({ cli, port, headless: true, namespace: 'default', dbFile: path.join(dir, 'temporal.sqlite'), logFile: path.join(dir, 'temporal.log') });

  before(async () => {
    const found = findTemporalCli(path.resolve('.data'), process.env.TEMPORAL_CLI);
    if (!found) throw new Error(MISSING_CLI_MESSAGE);
    cli = found;
    port = await freePort();
    server = await startServer();
    stack = await startTestStack({ worker: true, temporalAddress: server.address });
    await recordCompletedAtWrites(stack);
    repo = await makeSleepyRepo();
    const jobset = await createJobset(stack, repo.url, { inputs: { nonce: nonce() } });
    evaluationId = (await trigger(stack, jobset.jobsetId)).id;
  });
  after(async () => {
    await stack?.stop();
    await server?.stop();
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the server stops mid-build and starts again on the same port and database file', async () => {
    const evaluation = await waitForEvaluation(stack, evaluationId);
    assert.equal(evaluation.status, 'completed', evaluation.error_message);
    const one = (await buildsOf(stack, evaluationId)).one;
    await waitForBuildingStep(stack, one.id);
    const stoppedAt = Date.now();
    await server!.stop();
    server = undefined;
    const downFor = (Date.now() - stoppedAt) / 1000;
    await sleep(2_000);
    server = await startServer();
    restartedAt = Date.now();
    console.error(`[durability] Temporal stop took ${downFor.toFixed(1)} s; down ${((restartedAt - stoppedAt) / 1000).toFixed(1)} s in all`);
  });

  it('every build still finishes with the right status', async () => {
    const builds = await waitForBuilds(stack, evaluationId, { timeoutMs: 120_000 });
    console.error(`[durability] Temporal restart → all builds finished ${((Date.now() - restartedAt) / 1000).toFixed(1)} s after it was back`);
    assert.deepEqual(statusesOf(builds), EXPECTED);
    // The step that was building while Temporal was down was not built again: its first attempt counted.
    const attempts = await realiseAttempts(stack, builds.one.drv_path, [builds.two.drv_path, builds.three.drv_path]);
    assert.ok(attempts.length >= 1 && attempts.every((a) => a === 1), `attempts: ${attempts}`);
  });

  it('each build finished exactly once: one workflow run, one completion, no duplicate rows', async () => {
    await assertFinishedOnce(stack, evaluationId);
  });
});
