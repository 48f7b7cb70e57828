import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { makeGitRepo, type GitFixtureRepo } from '../support/git-fixture';
import { buildsOf, createJobset, eventually, nonce, trigger, waitForBuilds, waitForEvaluation } from '../support/pipeline';
import { makeReleaseRepo } from '../support/worker-process';
import { startActivityResultOf } from '../support/batches';

/**
 * A build whose outputs are valid in the store already costs no step: its evaluation checks the whole
 * batch at once and records it succeeded, and its BuildWorkflow only confirms.
 */
describe('builds whose outputs are already valid', () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let first: Record<string, Record<string, any>>;
  let again: Record<string, Record<string, any>>;
  let againEvaluationId: string;
  const token = `valid-${nonce()}`;

  before(async () => {
    stack = await startTestStack({ worker: true });
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringmaster-already-built-'));
    try {
      const jobs = Array.from({ length: 6 }, (_, i) => `  j${i} = job "j${i}" ${i === 0 ? '{ }' : `{ dep = j${i - 1}; }`};`);
      await fsp.writeFile(
        path.join(dir, 'release.nix'),
        [
          '{ nonce ? "none" }:',
          'let',
          '  job = name: attrs: derivation ({',
          '    inherit name nonce;',
          '    system = builtins.currentSystem;',
          '    builder = "/bin/sh";',
          '    args = [ "-c" "echo $name $nonce > $out" ];',
          '  } // attrs);',
          'in rec {',
          ...jobs,
          '}',
          '',
        ].join('\n'),
      );
      repo = await makeGitRepo(dir);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
    // The first jobset builds the jobs; a second project on the same repository and nonce finds them built.
    const a = await createJobset(stack, repo.url, { inputs: { nonce: token } });
    const firstEval = await trigger(stack, a.jobsetId);
    await waitForEvaluation(stack, firstEval.id);
    first = await waitForBuilds(stack, firstEval.id, { timeoutMs: 120_000 });
    const b = await createJobset(stack, repo.url, { inputs: { nonce: token } });
    againEvaluationId = (await trigger(stack, b.jobsetId)).id;
    const evaluation = await waitForEvaluation(stack, againEvaluationId);
    assert.equal(evaluation.status, 'completed');
    // Read as soon as the evaluation completes: the builds were recorded by the evaluation itself.
    again = await buildsOf(stack, againEvaluationId);
  });
  after(async () => {
    await stack?.stop();
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
  });

  it('the first evaluation builds every job', () => {
    assert.deepEqual(Object.values(first).map((b) => b.status), Array(6).fill('succeeded'));
  });

  it('when the evaluation that finds them built completes, every build is already succeeded with the same outputs', () => {
    assert.equal(Object.keys(again).length, 6);
    for (const [job, b] of Object.entries(again)) {
      assert.equal(b.status, 'succeeded', job);
      assert.equal(b.build_output_path, first[job].build_output_path, job);
      assert.ok(b.completed_at, job);
      assert.ok(Number(b.closure_size) > 0, `${job} has its closure size`);
    }
  });

  it('they ran no step, and their outputs are listed', async () => {
    const ids = Object.values(again).map((b) => b.id);
    assert.equal((await stack.db('build_steps').whereIn('build_id', ids)).length, 0);
    const outputs = await stack.db('build_outputs').whereIn('build_id', ids);
    assert.equal(outputs.length, 6);
    const j5 = await stack.request('GET', `/api/v1/builds/${again.j5.id}`, { key: stack.adminKey });
    assert.equal(j5.status, 200);
    assert.equal(j5.body.status, 'succeeded');
  });

  it('each still has its build-<id> workflow, which closes as succeeded', async () => {
    for (const b of Object.values(again)) {
      const handle = stack.temporal.client.workflow.getHandle(`build-${b.id}`);
      const result = await eventually(`build-${b.id} to close`, async () => {
        const d = await handle.describe();
        return d.status.name === 'RUNNING' ? undefined : d;
      }, 60_000);
      assert.equal(result.status.name, 'COMPLETED');
      assert.deepEqual(await handle.result(), { status: 'succeeded' });
    }
  });
});

describe('eager build starts, one worker', () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let evaluationId: string;

  before(async () => {
    stack = await startTestStack({ worker: true });
    repo = await makeReleaseRepo(
      [
        '{ nonce ? "none" }:',
        'let job = name: derivation { inherit name nonce; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo $name $nonce > $out" ]; };',
        'in { a = job "a"; b = job "b"; c = job "c"; }',
        '',
      ].join('\n'),
    );
    const jobset = await createJobset(stack, repo.url, { inputs: { nonce: nonce() } });
    evaluationId = (await trigger(stack, jobset.jobsetId)).id;
    await waitForEvaluation(stack, evaluationId);
    await waitForBuilds(stack, evaluationId, { timeoutMs: 120_000 });
  });
  after(async () => {
    await stack?.stop();
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
  });

  it("the only worker's start activity got each build's first workflow task in the start's answer", async () => {
    // The evaluation's workflow closes once its start activity has reported (its builds may finish before).
    const result = await startActivityResultOf(stack, evaluationId);
    assert.ok(result, 'startBuildWorkflowsOfEvaluation completed');
    assert.equal(result.started, 3);
    assert.equal(result.eagerly, 3);
    for (const b of Object.values(await buildsOf(stack, evaluationId))) assert.equal(b.status, 'succeeded');
  });
});
