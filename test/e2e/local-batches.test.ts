import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import type { GitFixtureRepo } from '../support/git-fixture';
import { pidsWithCommandLine } from '../support/sshd';
import { buildsOf, createJobset, eventually, nonce, trigger, waitForBuilds, waitForEvaluation } from '../support/pipeline';
import { makeReleaseRepo } from '../support/worker-process';
import { dispatcherWorkflowId } from '../../workflows/shared';

/**
 * Issue 6: on the worker's own Nix, queued derivations are realised in batches, one `nix-store
 * --realise --keep-going` for many, each derivation's result reaching its build as soon as it ends.
 */
const marker = `batch-${nonce()}`;
const RELEASE_NIX = `{ nonce ? "x", system ? builtins.currentSystem }:
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
/** A jobset of its own for the cancel: its two jobs queue together, so one batch usually realises both. */
const CANCEL_NIX = `{ nonce ? "x", system ? builtins.currentSystem }:
let
  mk = name: script: derivation { inherit name system nonce; PATH = "/bin:/usr/bin"; builder = "/bin/sh"; args = [ "-c" script ]; };
in {
  long = mk "long" "echo ${marker}-long; sleep 120; echo > $out";
  short = mk "short" "echo ${marker}-short; sleep 15; echo short $nonce > $out";
}
`;

describe('derivations realised in batches on the local builder', () => {
  let stack: TestStack;
  const repos: GitFixtureRepo[] = [];
  let evaluationId: string;

  before(async () => {
    stack = await startTestStack({ worker: true, env: { RINGMASTER_LOCAL_MAX_JOBS: '2' } });
    const repo = await makeReleaseRepo(RELEASE_NIX);
    repos.push(repo);
    const jobset = await createJobset(stack, repo.url, { inputs: { nonce: nonce() } });
    evaluationId = (await trigger(stack, jobset.jobsetId)).id;
    assert.equal((await waitForEvaluation(stack, evaluationId)).status, 'completed');
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
    const steps = await stack.db('build_steps').whereIn('build_id', Object.values(done).map((b) => b.id)).where({ status: 'succeeded' }).whereNotNull('started_at').select('drv_path', 'started_at');
    const starts = new Map<string, Set<string>>();
    for (const s of steps) (starts.get(s.drv_path) ?? starts.set(s.drv_path, new Set()).get(s.drv_path)!).add(String(s.started_at));
    for (const [drv, at] of starts) assert.equal(at.size, 1, `${drv} was realised once`);
  });

  it('the dispatcher realised them with batch activities, not one slot grant per derivation', async () => {
    const history = await stack.temporal.client.workflow.getHandle(dispatcherWorkflowId(stack.taskQueue)).fetchHistory();
    const batches = (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'realiseBatch').length;
    const grants = (history.events ?? []).filter((e) => e.signalExternalWorkflowExecutionInitiatedEventAttributes?.signalName === 'slotGranted').length;
    assert.ok(batches >= 1, 'at least one batch');
    assert.equal(grants, 0, 'no slot was granted to a derivation');
  });

  it('a build cancelled while its derivation builds in a batch is killed; the derivations that shared its nix-store are built all the same', async () => {
    const repo = await makeReleaseRepo(CANCEL_NIX);
    repos.push(repo);
    const jobset = await createJobset(stack, repo.url, { inputs: { nonce: nonce() } });
    const cancelEvaluationId = (await trigger(stack, jobset.jobsetId)).id;
    assert.equal((await waitForEvaluation(stack, cancelEvaluationId)).status, 'completed');
    const both = await eventually('long and short to be building', async () => {
      const builds = await buildsOf(stack, cancelEvaluationId);
      if (!builds.long || !builds.short) return undefined;
      return pidsWithCommandLine(`${marker}-long`).length > 0 && pidsWithCommandLine(`${marker}-short`).length > 0 ? builds : undefined;
    }, 120_000, 100);
    // Usually one nix-store realises both (they queue together); else each its own, and the cancel kills only long's.
    const shared = pidsWithCommandLine(both.long.drv_path).some((pid) => pidsWithCommandLine(both.short.drv_path).includes(pid));
    console.error(`[local-batches] long and short ${shared ? 'shared one nix-store' : 'were realised by separate nix-stores'}`);
    const cancelled = await stack.request('POST', `/api/v1/builds/${both.long.id}/cancel`, { key: stack.adminKey });
    assert.equal(cancelled.status, 200, cancelled.text);
    await eventually("long's builder process to be killed", async () => (pidsWithCommandLine(`${marker}-long`).length === 0 ? true : undefined), 60_000);
    const done = await waitForBuilds(stack, cancelEvaluationId, { timeoutMs: 180_000 });
    assert.equal(done.long.status, 'cancelled');
    assert.equal(done.short.status, 'succeeded', done.short.error_message);
    assert.equal(done.short.retry_count, 0, 'short was not restarted: an interrupted derivation is queued again, unseen by its build');
  });
});
