import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import type { GitFixtureRepo } from '../support/git-fixture';
import { buildsOf, createJobset, eventually, nonce, trigger, waitForBuilds, waitForEvaluation } from '../support/pipeline';
import {
  assertFinishedOnce,
  descendantsOf,
  killLikeAPowerCut,
  recordCompletedAtWrites,
  spawnWorkerProcess,
  statusesOf,
  makeReleaseRepo,
  tearDownKillTest,
} from '../support/worker-process';

/**
 * More than one worker process on the same Temporal and PostgreSQL: they share the work, no derivation
 * is realised twice at once, and killing one of them loses nothing.
 */

/** 30 jobs that each sleep a second, all on one shared dependency that sleeps two. */
const SHARED_SIZE = 30;
const SHARED_RELEASE_NIX = `{ nonce ? "x", system ? builtins.currentSystem }:
let
  mk = name: script: attrs: derivation ({ inherit name system nonce; PATH = "/bin:/usr/bin"; builder = "/bin/sh"; args = [ "-c" script ]; } // attrs);
  base = mk "base" "sleep 2; echo $nonce > $out" { };
  job = i: mk "s\${toString i}" "sleep 1; read line < $base; echo \${toString i} $line > $out" { inherit base; };
in
builtins.listToAttrs (builtins.genList (i: { name = "s\${toString i}"; value = job i; }) ${SHARED_SIZE})
`;

describe('two worker processes on the same Temporal and PostgreSQL, one of them killed', () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let evaluationId: string;
  const workers: ChildProcess[] = [];
  const realisedBy = new Set<number>();
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-two-workers-'));

  before(async () => {
    stack = await startTestStack({ worker: false });
    await recordCompletedAtWrites(stack);
    repo = await makeReleaseRepo(SHARED_RELEASE_NIX);
    const jobset = await createJobset(stack, repo.url, { inputs: { nonce: nonce() } });
    workers.push(spawnWorkerProcess(stack, path.join(logDir, 'worker-a.log')), spawnWorkerProcess(stack, path.join(logDir, 'worker-b.log')));
    evaluationId = (await trigger(stack, jobset.jobsetId)).id;
  });
  after(() => tearDownKillTest({ workers, stack, repo, logDir }));

  it('both workers share the work: each runs workflow tasks of the builds, and steps are realised', async () => {
    const evaluation = await waitForEvaluation(stack, evaluationId);
    assert.equal(evaluation.status, 'completed', evaluation.error_message);
    // On the worker's own Nix, derivations are realised in batches (issue 6): one nix-store may realise
    // them all, under either worker; the builds' and derivations' workflow tasks go to both.
    await eventually('a nix-store --realise under a worker', async () => {
      for (const w of workers) if (descendantsOf(w.pid!).some((p) => p.cmdline.startsWith('nix-store --realise'))) realisedBy.add(w.pid!);
      return realisedBy.size >= 1 ? true : undefined;
    }, 300_000, 50);
    await eventually('workflow tasks completed by each worker', async () => {
      const identities = new Set<string>();
      for (const b of Object.values(await buildsOf(stack, evaluationId))) {
        const history = await stack.temporal.client.workflow.getHandle(b.workflow_id).fetchHistory().catch(() => undefined);
        for (const e of history?.events ?? []) if (e.workflowTaskCompletedEventAttributes?.identity) identities.add(e.workflowTaskCompletedEventAttributes.identity);
      }
      return workers.every((w) => [...identities].some((id) => id.startsWith(`${w.pid}@`))) ? true : undefined;
    }, 300_000, 1_000);
  });

  it('killing one worker (kill -9, with its builds) mid-way loses nothing: every build finishes with the right status', async () => {
    await eventually('a few builds to finish', async () => {
      const finished = Object.values(await buildsOf(stack, evaluationId)).filter((b) => b.status === 'succeeded').length;
      return finished >= 3 ? true : undefined;
    }, 300_000, 100);
    await killLikeAPowerCut(workers[0]);
    const builds = await waitForBuilds(stack, evaluationId, { timeoutMs: 600_000 });
    assert.deepEqual(statusesOf(builds), Object.fromEntries(Array.from({ length: SHARED_SIZE }, (_, i) => [`s${i}`, 'succeeded'])));
  });

  it('no derivation was realised twice at once: the step rows of each derivation record one realisation', async () => {
    const steps = await stack.db('build_steps as s').join('builds as b', 'b.id', 's.build_id').where('b.evaluation_id', evaluationId).select('s.drv_path', 's.status', 's.started_at', 's.completed_at');
    const byDrv = new Map<string, typeof steps>();
    for (const st of steps) byDrv.set(st.drv_path, [...(byDrv.get(st.drv_path) ?? []), st]);
    const base = [...byDrv.entries()].find(([drv]) => drv.endsWith('-base.drv'));
    // Its builds wait on it through their derivations' workflows, or are held back while a batch builds it
    // with the rest (issue 6: then only base's own build has a row of it).
    assert.ok(base && base[1].length >= 1, 'the shared dependency was realised');
    for (const [drv, rows] of byDrv) {
      assert.ok(rows.every((r) => r.status === 'succeeded'), `${drv}: every step succeeded`);
      // The rows a realisation marked share its start and its end. (A build that planned after the
      // realisation began, or found the outputs valid meanwhile, has no start on its row.)
      const realised = rows.filter((r) => r.started_at);
      assert.equal(new Set(realised.map((r) => new Date(r.started_at).getTime())).size, 1, `${drv}: one start shared by every build that wanted it`);
      assert.equal(new Set(realised.map((r) => new Date(r.completed_at).getTime())).size, 1, `${drv}: one end`);
    }
  });

  it('each build finished exactly once: one workflow run, one completion, no duplicate rows', async () => {
    await assertFinishedOnce(stack, evaluationId);
  });
});
