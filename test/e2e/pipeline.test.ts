import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { startSshBuilder, pidsWithCommandLine, type SshBuilder } from '../support/sshd';
import { makeGitRepo, type GitFixtureRepo } from '../support/git-fixture';
import { buildsOf, createJobset, eventually, JOBSET_FIXTURE, nonce, trigger, waitForBuilds, waitForEvaluation, type CreatedJobset } from '../support/pipeline';
import { localSystem } from '../../activities/nix-system';
import { fetchHistories, replayAll } from '../support/histories';
import { derivationWorkflowId, dispatcherWorkflowId } from '../../workflows/shared';
import {
  RingmasterBuildId,
  RingmasterEvaluationId,
  RingmasterJob,
  RingmasterJobset,
  RingmasterProject,
  RingmasterStatus,
  RingmasterSystem,
} from '../../lib/search-attributes';

/**
 * The whole pipeline on real parts: a git repository with the fixture jobset, a Temporal dev server,
 * PostgreSQL, the worker, and two real sshd builders on loopback, each with its own Nix store.
 */
describe('a jobset evaluated and built on two sshd builders', () => {
  let stack: TestStack;
  let narrow: SshBuilder;
  let wide: SshBuilder;
  let repo: GitFixtureRepo;
  let jobset: CreatedJobset;
  let evaluationId: string;
  let builderIds: Record<string, string> = {};
  const greeting = `hi-${nonce()}`;

  before(async () => {
    stack = await startTestStack({ worker: true, env: { RINGMASTER_TRANSFER_TIMEOUT_SECONDS: '45' } });
    [narrow, wide] = await Promise.all([startSshBuilder({ name: 'narrow' }), startSshBuilder({ name: 'wide' })]);
    const system = await localSystem();
    for (const [b, maxJobs] of [[narrow, 1], [wide, 2]] as const) {
      const res = await stack.request('POST', '/api/v1/admin/builders', {
        key: stack.adminKey,
        body: {
          name: b.spec.name,
          ssh_uri: b.spec.sshUri,
          ssh_key_file: b.spec.sshKeyFile,
          public_host_key: b.spec.publicHostKey,
          remote_store: b.spec.remoteStore,
          systems: [system],
          max_jobs: maxJobs,
          speed_factor: 1,
        },
      });
      assert.equal(res.status, 200, res.text);
      builderIds[b.spec.name] = res.body.id;
    }
    repo = await makeGitRepo(JOBSET_FIXTURE);
    jobset = await createJobset(stack, repo.url, { inputs: { greeting } });
  });
  after(async () => {
    await stack?.stop();
    await Promise.allSettled([narrow?.stop(), wide?.stop()]);
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
  });

  it('the trigger answers 202 with the evaluation', async () => {
    const evaluation = await trigger(stack, jobset.jobsetId);
    assert.equal(evaluation.created, true);
    assert.equal(evaluation.commit_hash, repo.commit);
    evaluationId = evaluation.id;
  });

  it('the evaluation completes, recording every job and the per-job error', async () => {
    const evaluation = await waitForEvaluation(stack, evaluationId);
    assert.equal(evaluation.status, 'completed', evaluation.error_message);
    const builds = await buildsOf(stack, evaluationId);
    for (const job of ['a', 'b', 'c', 'broken', 'needsBroken', 'release', 'urgent', 'withProducts', 'slow', 'tools.x']) assert.ok(builds[job], `job ${job} recorded`);
    const errors = await stack.db('evaluation_errors').where({ evaluation_id: evaluationId });
    assert.deepEqual(errors.map((e) => e.job_name), ['evalError']);
    assert.equal(builds.urgent.priority, 200);
    assert.equal(builds.release.is_aggregate, true);
    const deps = await stack.db('build_dependencies').where({ build_id: builds.c.id });
    assert.deepEqual(deps.map((d) => d.dependency_build_id), [builds.b.id]);
  });

  it('the slow job is cancelled while it runs, and its remote process is killed', async () => {
    const slow = (await buildsOf(stack, evaluationId)).slow;
    await eventually('slow to be building on a builder', async () => {
      const step = await stack.db('build_steps').where({ build_id: slow.id, drv_path: slow.drv_path }).first();
      if (step?.status !== 'running' || step?.phase !== 'building') throw new Error(`slow's step is ${step?.status}/${step?.phase}`);
      return step;
    });
    await eventually('the remote sleep to run', async () => (pidsWithCommandLine('sleep 300').length > 0 ? true : undefined));
    const res = await stack.request('POST', `/api/v1/builds/${slow.id}/cancel`, { key: stack.adminKey, body: {} });
    assert.equal(res.status, 200, res.text);
    await eventually('slow to be cancelled', async () => ((await stack.db('builds').where({ id: slow.id }).first()).status === 'cancelled' ? true : undefined));
    await eventually('the remote process to be gone', async () => (pidsWithCommandLine('sleep 300').length === 0 ? true : undefined), 15_000);
  });

  it('every other build ends with the status it should', async () => {
    const builds = await waitForBuilds(stack, evaluationId);
    const status = Object.fromEntries(Object.entries(builds).map(([k, v]) => [k, v.status]));
    assert.deepEqual(status, {
      a: 'succeeded',
      b: 'succeeded',
      c: 'succeeded',
      broken: 'failed',
      needsBroken: 'dependency_failed',
      release: 'succeeded',
      urgent: 'succeeded',
      withProducts: 'succeeded',
      slow: 'cancelled',
      'tools.x': 'succeeded',
    });
    assert.match(builds.needsBroken.error_message, /broken/);
  });

  it('outputs came back to the server store after travelling to the builders', async () => {
    const builds = await buildsOf(stack, evaluationId);
    const c = builds.c;
    assert.ok(c.build_output_path && fs.existsSync(c.build_output_path), 'c output in /nix/store');
    assert.match(fs.readFileSync(c.build_output_path, 'utf8'), new RegExp(`${greeting} from a, then b, then c`));
    // c was built remotely: b's output had to travel to that builder's own store first.
    const builder = Object.entries(builderIds).find(([, id]) => id === c.builder_id)?.[0];
    assert.ok(builder, 'c ran on a remote builder');
    const store = builder === 'narrow' ? narrow.storeRoot : wide.storeRoot;
    assert.ok(fs.existsSync(path.join(store, builds.b.build_output_path)), "b's output is in the builder's store");
  });

  it('products, metrics and the log are recorded', async () => {
    const b = (await buildsOf(stack, evaluationId)).withProducts;
    const products = await stack.request('GET', `/api/v1/builds/${b.id}/products`);
    assert.equal(products.status, 200);
    assert.equal(products.body.length, 1);
    assert.equal(products.body[0].name, 'hello.txt');
    assert.match(products.body[0].sha256_hash, /^[0-9a-f]{64}$/);
    const download = await stack.request('GET', `/api/v1/builds/${b.id}/products/${products.body[0].id}/download`);
    assert.equal(download.status, 200);
    assert.equal(download.text.trim(), greeting);
    const metrics = await stack.db('build_metrics').where({ build_id: b.id });
    assert.deepEqual(metrics.map((m) => [m.name, m.value, m.unit]), [['lines', 3, 'count']]);
    const broken = (await buildsOf(stack, evaluationId)).broken;
    const log = await stack.request('GET', `/api/v1/builds/${broken.id}/log`);
    assert.equal(log.status, 200);
    assert.match(log.text, /broken is failing on purpose/);
  });

  it('the builder with max_jobs 1 never ran two steps at once', async () => {
    // Realisations that ran to their end: a cancelled step's completed_at is when its build recorded the
    // cancel, which may come after the next step started, while its process was killed before that
    // (the batch's slot frees only once the kill is done; the cancel test above checks the kill).
    const steps = await stack.db('build_steps')
      .where({ builder_id: builderIds.narrow })
      .whereIn('status', ['succeeded', 'failed', 'timeout', 'log_limit_exceeded'])
      .whereNotNull('started_at').whereNotNull('completed_at').orderBy('started_at');
    // One realisation shared by several builds has one step row per build: count realisations.
    const spans = new Map<string, { start: number; end: number }>();
    for (const s of steps) spans.set(s.drv_path, { start: new Date(s.started_at).getTime(), end: new Date(s.completed_at).getTime() });
    const sorted = [...spans.values()].sort((x, y) => x.start - y.start);
    for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i].start >= sorted[i - 1].end, `overlap at step ${i}`);
  });

  it('the same inputs again give no new evaluation: the trigger answers the existing one', async () => {
    const again = await trigger(stack, jobset.jobsetId);
    assert.equal(again.created, false);
    assert.equal(again.id, evaluationId);
  });

  it('a restart re-runs a failed build and the dependents that failed because of it', async () => {
    const before = await buildsOf(stack, evaluationId);
    const res = await stack.request('POST', `/api/v1/builds/${before.broken.id}/restart`, { key: stack.adminKey, body: {} });
    assert.equal(res.status, 200, res.text);
    // The answer is the row after the new run started: queued, or already running if it planned at once.
    assert.ok(['pending', 'running'].includes(res.body.status), `the restarted build is ${res.body.status}`);
    const after = await waitForBuilds(stack, evaluationId);
    assert.equal(after.broken.status, 'failed', 'built again, not a cached failure');
    assert.equal(after.broken.retry_count, before.broken.retry_count + 1);
    assert.equal(after.needsBroken.retry_count, before.needsBroken.retry_count + 1);
    assert.equal(after.needsBroken.status, 'dependency_failed');
    const running = await stack.request('POST', `/api/v1/builds/${before.a.id}/cancel`, { key: stack.adminKey, body: {} });
    assert.equal(running.status, 409, 'a finished build cannot be cancelled');
  });

  it('a restarted build keeps the search attributes of its first run, so the Temporal UI still finds both runs', async () => {
    const { broken } = await buildsOf(stack, evaluationId);
    const project = await stack.db('projects').where({ id: jobset.projectId }).first();
    const jobsetRow = await stack.db('jobsets').where({ id: jobset.jobsetId }).first();
    const runs = await eventually('visibility to list both runs of the restarted build', async () => {
      const found: string[] = [];
      for await (const wf of stack.temporal.client.workflow.list({ query: `RingmasterBuildId = "${broken.id}"` })) found.push(wf.runId);
      return found.length >= 2 ? found : undefined;
    }, 30_000, 500);
    assert.equal(runs.length, 2, 'the first run and the restart');
    for (const runId of runs) {
      // The row is final once finishBuild has run; the run upserts its status in the task after that, as it closes.
      const description = await eventually(`run ${runId} to close`, async () => {
        const d = await stack.temporal.client.workflow.getHandle(`build-${broken.id}`, runId).describe();
        return d.status.name === 'RUNNING' ? undefined : d;
      }, 30_000, 200);
      assert.equal(description.status.name, 'COMPLETED', `run ${runId}`);
      const attributes = description.typedSearchAttributes;
      assert.equal(attributes.get(RingmasterProject), project.name, `run ${runId}`);
      assert.equal(attributes.get(RingmasterJobset), `${project.name}/${jobsetRow.name}`, `run ${runId}`);
      assert.equal(attributes.get(RingmasterJob), 'broken', `run ${runId}`);
      assert.equal(attributes.get(RingmasterSystem), broken.system, `run ${runId}`);
      assert.equal(attributes.get(RingmasterBuildId), broken.id, `run ${runId}`);
      assert.equal(attributes.get(RingmasterEvaluationId), evaluationId, `run ${runId}`);
      assert.equal(attributes.get(RingmasterStatus), 'failed', `run ${runId}: the workflow keeps its status attribute up to date`);
    }
  });

  it('a new commit gives a new evaluation whose unchanged failing job is a cached failure', async () => {
    const commit = await repo.commitChange('README', 'a change that touches no job\n');
    const evaluation = await trigger(stack, jobset.jobsetId);
    assert.equal(evaluation.created, true);
    assert.equal(evaluation.commit_hash, commit);
    await waitForEvaluation(stack, evaluation.id);
    const builds = await waitForBuilds(stack, evaluation.id, { except: ['slow'] });
    assert.equal(builds.broken.status, 'cached_failure');
    assert.equal(builds.c.status, 'succeeded');
    const compare = await stack.request('GET', `/api/v1/evaluations/${evaluation.id}/compare?to=${evaluationId}`);
    assert.equal(compare.status, 200, compare.text);
    await stack.request('POST', `/api/v1/builds/${builds.slow.id}/cancel`, { key: stack.adminKey, body: {} });
  });

  it('operators can find the builds in Temporal by their search attributes', async () => {
    const project = await stack.db('projects').where({ id: jobset.projectId }).first();
    const query = `RingmasterProject = "${project.name}" AND RingmasterStatus = "failed"`;
    const broken = (await buildsOf(stack, evaluationId)).broken;
    const found = await eventually('visibility to list the failed build', async () => {
      const ids: string[] = [];
      for await (const wf of stack.temporal.client.workflow.list({ query })) ids.push(wf.workflowId);
      return ids.includes(`build-${broken.id}`) ? ids : undefined;
    }, 30_000, 1000);
    assert.ok(found.every((id) => id.startsWith('build-')), `only build workflows carry a build status: ${found.join(', ')}`);
  });

  it("this run's workflow histories replay against the current workflow code", async () => {
    const builds = await buildsOf(stack, evaluationId);
    const ids = [
      `eval-${evaluationId}`,
      `build-${builds.c.id}`,
      `build-${builds.needsBroken.id}`,
      `build-${builds.slow.id}`,
      `build-${builds.release.id}`,
      derivationWorkflowId(stack.taskQueue, builds.c.drv_path),
      dispatcherWorkflowId(stack.taskQueue),
    ];
    const failures = await replayAll(await fetchHistories(stack.temporal.client, ids));
    assert.deepEqual(failures, []);
  });
});
