import fs from 'node:fs';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from './stack';
import { pidsWithCommandLine, startSshBuilder } from './sshd';
import { registerSshBuilder, type RegisteredBuilder } from './builder-registration';
import { makeReleaseRepo } from './worker-process';
import { buildsOf, createJobset, eventually, nonce, trigger, waitForBuilds, waitForEvaluation } from './pipeline';
import type { GitFixtureRepo } from './git-fixture';
import { dispatcherStateQuery, dispatcherWorkflowId } from '../../workflows/shared';

/**
 * What the batch tests (the worker's own Nix, SSH builders) check alike: how often each derivation was
 * realised, how the dispatcher handed out work, and a cancel of one of two builds that may share a
 * nix-store.
 */

/** A project and jobset on the repository's `release.nix` (a fresh `nonce` input), evaluated: the evaluation's id, once it completed. */
export async function evaluateRelease(stack: TestStack, repo: GitFixtureRepo): Promise<string> {
  const jobset = await createJobset(stack, repo.url, { inputs: { nonce: nonce() } });
  const evaluationId = (await trigger(stack, jobset.jobsetId)).id;
  const evaluation = await waitForEvaluation(stack, evaluationId);
  assert.equal(evaluation.status, 'completed', evaluation.error_message);
  return evaluationId;
}

/** A build's log, as the API serves it. */
export async function buildLogOf(stack: TestStack, buildId: string): Promise<string> {
  const res = await stack.request('GET', `/api/v1/builds/${buildId}/log`);
  assert.equal(res.status, 200, res.text);
  return res.text;
}

/** Each derivation of these builds' succeeded steps → the distinct times its realisation started, and the builders recorded. */
export async function realisationsOf(stack: TestStack, buildIds: string[]): Promise<Map<string, { starts: Set<string>; builderIds: Set<string | null> }>> {
  const steps = await stack.db('build_steps').whereIn('build_id', buildIds).where({ status: 'succeeded' }).whereNotNull('started_at').select('drv_path', 'started_at', 'builder_id');
  const out = new Map<string, { starts: Set<string>; builderIds: Set<string | null> }>();
  for (const s of steps) {
    const entry = out.get(s.drv_path) ?? { starts: new Set<string>(), builderIds: new Set<string | null>() };
    entry.starts.add(String(s.started_at));
    entry.builderIds.add(s.builder_id ?? null);
    out.set(s.drv_path, entry);
  }
  return out;
}

/** The task queue's dispatcher realised derivations with at least one `realiseBatch` activity and granted no slot to a single derivation. */
export async function assertRealisedByBatchesOnly(stack: TestStack): Promise<void> {
  const { batches, grants } = await dispatcherWork(stack);
  assert.ok(batches >= 1, 'at least one batch');
  assert.equal(grants, 0, 'no slot was granted to a derivation');
}

/** How many `realiseBatch` activities the task queue's dispatcher scheduled, and how many slots it granted to single derivations. */
export async function dispatcherWork(stack: TestStack): Promise<{ batches: number; grants: number }> {
  const history = await stack.temporal.client.workflow.getHandle(dispatcherWorkflowId(stack.taskQueue)).fetchHistory();
  const events = history.events ?? [];
  return {
    batches: events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'realiseBatch').length,
    grants: events.filter((e) => e.signalExternalWorkflowExecutionInitiatedEventAttributes?.signalName === 'slotGranted').length,
  };
}

/**
 * Waits until no batch or step holds a slot of any builder: a batch's `--max-jobs` is fixed when its
 * nix-store starts, so two jobs queued while an earlier batch still holds a slot go into one batch with
 * the one slot left, and Nix builds them one after the other (`cancelLongBesideShort` needs both slots).
 */
async function waitForIdleBuilders(stack: TestStack): Promise<void> {
  const dispatcher = stack.temporal.client.workflow.getHandle(dispatcherWorkflowId(stack.taskQueue));
  await eventually('every builder slot to be free', async () => {
    const state = await dispatcher.query(dispatcherStateQuery);
    return state.queue.length === 0 && state.builders.every((b) => b.running === 0) ? true : undefined;
  }, 120_000, 200);
}

/**
 * Evaluates `repo` (from `longBesideShortNix(marker)`) once every builder slot is free, so both jobs
 * build at once however Nix orders a batch; waits until its `long` and `short` jobs both build (their
 * scripts echo `<marker>-long` and `<marker>-short`), cancels long, waits for its builder process to be
 * gone, and answers every build once finished. Prints whether one nix-store realised both (usual: they
 * queue together) or each its own.
 */
export async function cancelLongBesideShort(stack: TestStack, repo: GitFixtureRepo, marker: string, label: string): Promise<Record<string, Record<string, any>>> {
  await waitForIdleBuilders(stack);
  const evaluationId = await evaluateRelease(stack, repo);
  const both = await eventually('long and short to be building', async () => {
    const builds = await buildsOf(stack, evaluationId);
    if (!builds.long || !builds.short) return undefined;
    return pidsWithCommandLine(`${marker}-long`).length > 0 && pidsWithCommandLine(`${marker}-short`).length > 0 ? builds : undefined;
  }, 120_000, 100);
  const shared = pidsWithCommandLine(both.long.drv_path).some((pid) => pidsWithCommandLine(both.short.drv_path).includes(pid));
  console.error(`[${label}] long and short ${shared ? 'shared one nix-store' : 'were realised by separate nix-stores'}`);
  const cancelled = await stack.request('POST', `/api/v1/builds/${both.long.id}/cancel`, { key: stack.adminKey });
  assert.equal(cancelled.status, 200, cancelled.text);
  await eventually("long's builder process to be killed", async () => (pidsWithCommandLine(`${marker}-long`).length === 0 ? true : undefined), 60_000);
  return waitForBuilds(stack, evaluationId, { timeoutMs: 180_000 });
}

/** Five jobs of a batch: a chain (base → middle → top) and a failing job with a dependent. */
export const BATCH_DAG_NIX = `{ nonce ? "x", system ? builtins.currentSystem }:
let
  mk = name: script: extra: derivation ({ inherit name system nonce; PATH = "/bin:/usr/bin"; builder = "/bin/sh"; args = [ "-c" script ]; } // extra);
in rec {
  base = mk "base" "echo building base; echo base $nonce > $out" {};
  middle = mk "middle" "echo building middle; cat $base > $out" { inherit base; };
  top = mk "top" "echo building top; cat $middle > $out" { inherit middle; };
  broken = mk "broken" "echo about to fail; exit 1" {};
  dependent = mk "dependent" "cat $broken > $out" { inherit broken; };
}
`;

/** Two jobs for `cancelLongBesideShort`: they queue together, so one batch usually realises both. */
export function longBesideShortNix(marker: string): string {
  return `{ nonce ? "x", system ? builtins.currentSystem }:
let
  mk = name: script: derivation { inherit name system nonce; PATH = "/bin:/usr/bin"; builder = "/bin/sh"; args = [ "-c" script ]; };
in {
  long = mk "long" "echo ${marker}-long; sleep 120; echo > $out";
  short = mk "short" "echo ${marker}-short; sleep 15; echo short $nonce > $out";
}
`;
}

/**
 * A batch still building when its builder is lost: two slow jobs (their scripts echo `<marker>-slow` and
 * `<marker>-beside`, then take ten 1 s sleeps, so a builder stopped and continued still has most of them
 * ahead), one with a dependent.
 */
export function lostBatchNix(marker: string): string {
  return `{ nonce ? "x", system ? builtins.currentSystem }:
let
  mk = name: script: extra: derivation ({ inherit name system nonce; PATH = "/bin:/usr/bin"; builder = "/bin/sh"; args = [ "-c" script ]; } // extra);
  tenSeconds = "i=0; while [ $i -lt 10 ]; do sleep 1; i=$((i+1)); done";
in rec {
  slow = mk "slow" "echo ${marker}-slow; \${tenSeconds}; echo slow $nonce > $out" {};
  after = mk "after" "cat $slow > $out; echo after >> $out" { inherit slow; };
  beside = mk "beside" "echo ${marker}-beside; \${tenSeconds}; echo beside $nonce > $out" {};
}
`;
}

/** A stack (with its worker) and two SSH builders, `max_jobs` 2 each, on which `lostBatchNix(marker)` was evaluated. */
export interface LostBatchStand {
  stack: TestStack;
  builders: RegisteredBuilder[];
  evaluationId: string;
  /** Stops the stack and the builders and removes the repository; whatever of them was started. */
  stop(): Promise<void>;
}

export async function startLostBatchStand(builderNames: [string, string], marker: string): Promise<LostBatchStand> {
  const builders: RegisteredBuilder[] = [];
  let stack: TestStack | undefined;
  let repo: GitFixtureRepo | undefined;
  const stop = async () => {
    await stack?.stop();
    await Promise.allSettled(builders.map((b) => b.fixture.stop()));
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
  };
  try {
    stack = await startTestStack({ worker: true });
    for (const name of builderNames) builders.push(await registerSshBuilder(stack, await startSshBuilder({ name }), { maxJobs: 2 }));
    repo = await makeReleaseRepo(lostBatchNix(marker));
    return { stack, builders, evaluationId: await evaluateRelease(stack, repo), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Waits until the evaluation's `slow` job (of `lostBatchNix`) builds on one of the two builders: its step
 * running and building there, its script running on that builder. Answers that builder and the other one.
 */
export async function builderBuildingSlow(stack: TestStack, evaluationId: string, builders: RegisteredBuilder[], marker: string): Promise<{ building: RegisteredBuilder; other: RegisteredBuilder }> {
  const slow = await eventually('slow to be building on a builder', async () => {
    const builds = await buildsOf(stack, evaluationId);
    const row = builds.slow && (await stack.db('build_steps').where({ build_id: builds.slow.id, drv_path: builds.slow.drv_path }).first());
    const where = builders.find((b) => b.id === row?.builder_id);
    return row?.status === 'running' && row.phase === 'building' && where && runsOn(where, `${marker}-slow`) ? row : undefined;
  }, 120_000, 100);
  const building = builders.find((b) => b.id === slow.builder_id);
  const other = builders.find((b) => b.id !== slow.builder_id);
  assert.ok(building && other, 'slow builds on one of the registered builders');
  return { building, other };
}

/** Whether a process of the builder (below its sshd, or sandboxed in its store) has `needle` in its command line. */
export function runsOn(builder: RegisteredBuilder, needle: string): boolean {
  return builder.fixture.processes().some((p) => p.cmdline.includes(needle));
}

/** The result of an evaluation's `startBuildWorkflowsOfEvaluation` activity, once its workflow has closed. */
export async function startActivityResultOf(stack: TestStack, evaluationId: string): Promise<{ started: number; eagerly?: number; waitedForBatch?: boolean } | undefined> {
  const evaluationWorkflow = stack.temporal.client.workflow.getHandle(`eval-${evaluationId}`);
  await evaluationWorkflow.result();
  const scheduled = new Map<string, string>();
  for (const e of (await evaluationWorkflow.fetchHistory()).events ?? []) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(e.eventId), s.activityType?.name ?? '');
    const c = e.activityTaskCompletedEventAttributes;
    if (c && scheduled.get(String(c.scheduledEventId)) === 'startBuildWorkflowsOfEvaluation') return JSON.parse(Buffer.from(c.result!.payloads![0].data!).toString('utf8'));
  }
  return undefined;
}
