import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { temporal } from '@temporalio/proto';
import { startTestStack, type TestStack } from '../support/stack';
import { makeGitRepo, type GitFixtureRepo } from '../support/git-fixture';
import { buildsOf, createJobset, eventually, nonce, sleep, trigger, waitForBuilds, waitForEvaluation } from '../support/pipeline';
import { freePort } from '../../lib/processes';
import { startEmbeddedPostgres, type RunningPostgres } from '../../lib/embedded-postgres';
import { buildWorkflowId } from '../../workflows/shared';
import { recordCompletedAtWrites } from '../support/worker-process';

/**
 * PostgreSQL restarts while 50 builds run: a PostgreSQL of this test's own (not the suite's shared
 * one) is stopped and started again on the same data folder and port. While it is down the API
 * answers 503 with the COMPAT error body and /health names the database; afterwards every build
 * finishes exactly once with the right status, and no row is lost or duplicated.
 */

const EventType = temporal.api.enums.v1.EventType;
const JOBS = 50;
const FAILING = new Set(Array.from({ length: 5 }, (_, i) => `j${JOBS - 1 - i}`));
/** How long PostgreSQL stays down: long enough that builds finish their Nix work meanwhile. */
const OUTAGE_MS = 6_000;

/** Fifty independent jobs that each sleep a moment; the last five fail on purpose. */
function fiftyJobsNix(): string {
  const jobs = Array.from({ length: JOBS }, (_, i) => {
    const name = `j${i}`;
    const script = FAILING.has(name) ? `sleep 1; echo "${name} fails on purpose" >&2; exit 1` : `sleep 1; echo "$nonce ${name}" > $out`;
    return `  ${name} = job "${name}" ''${script}'';`;
  });
  return `{ nonce ? "x", system ? builtins.currentSystem }:
let
  job = name: script: derivation { inherit name system nonce; PATH = "/bin:/usr/bin"; builder = "/bin/sh"; args = [ "-c" script ]; };
in
{
${jobs.join('\n')}
}
`;
}

async function makeFiftyJobsRepo(): Promise<GitFixtureRepo> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-fifty-'));
  fs.writeFileSync(path.join(dir, 'release.nix'), fiftyJobsNix());
  try {
    return await makeGitRepo(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('PostgreSQL restarts while 50 builds run', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-pg-restart-'));
  const dataDir = path.join(dir, 'pg');
  let port = 0;
  let postgres: RunningPostgres | undefined;
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let jobsetId: string;
  let evaluationId: string;
  let stoppedAt = 0;
  let startedAgainAt = 0;
  const figures: string[] = [];

  before(async () => {
    fs.chmodSync(dir, 0o755); // as root, PostgreSQL runs as the postgres user
    port = await freePort();
    postgres = await startEmbeddedPostgres(dataDir, port);
    stack = await startTestStack({ postgresBaseUrl: postgres.baseUrl, env: { RINGMASTER_LOCAL_MAX_JOBS: '6' } });
    await recordCompletedAtWrites(stack);
    repo = await makeFiftyJobsRepo();
    jobsetId = (await createJobset(stack, repo.url, { inputs: { nonce: nonce() } })).jobsetId;
    evaluationId = (await trigger(stack, jobsetId)).id;
  });
  after(async () => {
    console.error(`[faults] PostgreSQL restart: ${figures.join('; ')}`);
    await stack?.stop();
    await postgres?.stop();
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the evaluation records 50 builds and some of them start building', async () => {
    const evaluation = await waitForEvaluation(stack, evaluationId, 180_000);
    assert.equal(evaluation.status, 'completed', evaluation.error_message);
    assert.equal(Object.keys(await buildsOf(stack, evaluationId)).length, JOBS);
    await eventually('a build step to be building', async () => {
      const step = await stack.db('build_steps').where({ status: 'running', phase: 'building' }).first();
      return step ? true : undefined;
    }, 300_000, 100);
  });

  it('while PostgreSQL is down, the API answers 503 with a clear body and /health names the database', async () => {
    const before = await stack.db('builds').where({ evaluation_id: evaluationId }).whereIn('status', ['pending', 'running']).count<{ n: string }[]>('* as n');
    const open = Number(before[0].n);
    assert.ok(open > 0, 'builds were still running when PostgreSQL stopped');
    stoppedAt = Date.now();
    await postgres!.stop();
    postgres = undefined;
    figures.push(`stopped with ${open} of ${JOBS} builds unfinished; the stop took ${((Date.now() - stoppedAt) / 1000).toFixed(1)} s`);

    const projects = await stack.request('GET', '/api/v1/projects');
    assert.equal(projects.status, 503, projects.text);
    assert.deepEqual(projects.body, { error: 'the database is unavailable; try again shortly', error_code: 'DATABASE_UNAVAILABLE' });
    assert.equal(projects.headers.get('retry-after'), '5');

    const mutation = await stack.request('POST', '/api/v1/evaluations/trigger', { key: stack.adminKey, body: { jobset_id: jobsetId } });
    assert.equal(mutation.status, 503, mutation.text);
    assert.equal(mutation.body.error_code, 'DATABASE_UNAVAILABLE');

    const health = await stack.request('GET', '/health');
    assert.equal(health.status, 503, health.text);
    assert.equal(health.body.status, 'degraded');
    assert.deepEqual(health.body.down, ['database']);
    assert.equal(health.body.database.status, 'down');
    assert.ok(health.body.database.error, 'the database entry says what went wrong');

    // The outage lasts a while, so that builds finish their Nix work and try to record it meanwhile.
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt)));
    const still = await stack.request('GET', '/health');
    assert.deepEqual(still.body.down, ['database']);
  });

  it('PostgreSQL starts again on the same data folder and port, and the API answers again', async () => {
    postgres = await startEmbeddedPostgres(dataDir, port);
    startedAgainAt = Date.now();
    figures.push(`down for ${((startedAgainAt - stoppedAt) / 1000).toFixed(1)} s`);
    await eventually('/health to answer 200', async () => ((await stack.request('GET', '/health')).status === 200 ? true : undefined), 60_000, 200);
    const projects = await stack.request('GET', '/api/v1/projects');
    assert.equal(projects.status, 200, projects.text);
  });

  it('every build finishes with the right status', async () => {
    const builds = await waitForBuilds(stack, evaluationId, { timeoutMs: 300_000 });
    figures.push(`all builds finished ${((Date.now() - startedAgainAt) / 1000).toFixed(1)} s after PostgreSQL was back`);
    const expected = Object.fromEntries(Array.from({ length: JOBS }, (_, i) => [`j${i}`, FAILING.has(`j${i}`) ? 'failed' : 'succeeded']));
    assert.deepEqual(Object.fromEntries(Object.entries(builds).map(([job, b]) => [job, b.status])), expected);
    figures.push(`${Object.values(builds).filter((b) => b.status === 'succeeded').length} succeeded, ${Object.values(builds).filter((b) => b.status === 'failed').length} failed as expected`);
  });

  it('each build finished exactly once and no row was lost or duplicated', async () => {
    assert.equal((await stack.db('evaluations').where({ jobset_id: jobsetId })).length, 1, 'one evaluation; the trigger refused with 503 created none');
    const rows = await stack.db('builds').where({ evaluation_id: evaluationId });
    assert.equal(rows.length, JOBS);
    assert.equal(new Set(rows.map((r) => r.job_name)).size, JOBS, 'one build per job');

    const writes = await stack.db('test_completed_at_writes').select('build_id').count<{ build_id: string; n: string }[]>('* as n').groupBy('build_id');
    assert.equal(writes.length, JOBS, 'every build recorded its end');
    assert.deepEqual(writes.filter((w) => Number(w.n) !== 1), [], 'completed_at written once per build');

    const outputs = await stack.db('build_outputs').whereIn('build_id', rows.map((r) => r.id));
    assert.equal(outputs.length, JOBS - FAILING.size, 'one output per succeeded build');
    assert.equal(new Set(outputs.map((o) => o.build_id)).size, outputs.length, 'no duplicate outputs');

    const steps = await stack.db('build_steps').whereIn('build_id', rows.map((r) => r.id));
    const stepsPerBuild = new Map<string, number>();
    for (const s of steps) stepsPerBuild.set(s.build_id, (stepsPerBuild.get(s.build_id) ?? 0) + 1);
    assert.deepEqual([...stepsPerBuild.values()].filter((n) => n !== 1), [], 'one step per build');
    assert.ok(steps.every((s) => s.status === 'succeeded' || s.status === 'failed'), `steps ended: ${[...new Set(steps.map((s) => s.status))].join(', ')}`);

    let retried = 0;
    for (const row of rows) {
      const handle = stack.temporal.client.workflow.getHandle(buildWorkflowId(row.id));
      // The build's row is final one workflow task before its workflow closes (finishBuild runs in that task).
      const description = await eventually(`${row.job_name}: its workflow to close`, async () => {
        const d = await handle.describe();
        return d.status.name === 'RUNNING' ? undefined : d;
      }, 30_000, 100);
      assert.equal(description.status.name, 'COMPLETED', `${row.job_name}: workflow status`);
      const events = (await handle.fetchHistory()).events ?? [];
      const count = (type: temporal.api.enums.v1.EventType) => events.filter((e) => e.eventType === type).length;
      assert.equal(count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED), 1, `${row.job_name}: one start`);
      assert.equal(count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED), 1, `${row.job_name}: one completion`);
      assert.equal(events[0].workflowExecutionStartedEventAttributes?.firstExecutionRunId, description.runId, `${row.job_name}: the only run`);
      if (events.some((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)) retried++;
    }
    figures.push(`${JOBS} build workflows each completed once (${retried} with a failed workflow task on the way), ${outputs.length} outputs, ${steps.length} steps, no duplicates`);
  });
});
