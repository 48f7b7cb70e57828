import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { makeGitRepo, type GitFixtureRepo } from '../support/git-fixture';
import { createJobset, eventually, nonce, sleep, waitForBuilds, waitForEvaluation } from '../support/pipeline';
import { freePort } from '../../lib/processes';
import { evaluationWorkflowId } from '../../workflows/shared';
import { spawnRingmasterProcess } from '../support/worker-process';

/**
 * kill -9 of the API process in the middle of POST /api/v1/evaluations/trigger: the evaluation then
 * exists whole (its row, its inputs, its workflow, its builds, a final status) or not at all. The
 * API only starts CheckJobsetWorkflow; the workflow's activity writes the evaluation row in one
 * transaction and the workflow starts its EvaluationWorkflow, so once Temporal has the start the
 * trigger completes without the API, and before that nothing was written.
 */

const JOBS = ['hello', 'world'];

const TWO_JOBS_NIX = `{ nonce ? "x", system ? builtins.currentSystem }:
let job = name: derivation { inherit name system nonce; builder = "/bin/sh"; args = [ "-c" "echo $nonce > $out" ]; };
in { hello = job "hello"; world = job "world"; }
`;

async function makeTwoJobsRepo(): Promise<GitFixtureRepo> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-kill-api-'));
  fs.writeFileSync(path.join(dir, 'release.nix'), TWO_JOBS_NIX);
  try {
    return await makeGitRepo(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

interface ApiProcess {
  child: ChildProcess;
  url: string;
  exited: Promise<void>;
}

/** `node bin/ringmaster.js api` as a child process on a free port, against the stack's database and Temporal. */
async function spawnApi(stack: TestStack, logFile: string): Promise<ApiProcess> {
  const port = await freePort();
  const child = spawnRingmasterProcess(stack, 'api', logFile, { env: { PORT: String(port), HOST: '127.0.0.1' } });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  await eventually(`the API process to listen on ${url}`, async () => {
    if (child.exitCode !== null) throw new Error(`the API process exited with ${child.exitCode}: ${fs.readFileSync(logFile, 'utf8')}`);
    const res = await fetch(`${url}/api/v1/projects`).catch(() => undefined);
    return res?.status === 200 ? true : undefined;
  }, 120_000, 100);
  return { child, url, exited };
}

async function killNine(api: ApiProcess): Promise<void> {
  try {
    process.kill(api.child.pid!, 'SIGKILL');
  } catch {
    /* already gone */
  }
  await api.exited;
}

/** Sends the trigger and resolves once its whole body has been handed to the socket; `answer` settles with the status or the error. */
function sendTrigger(api: ApiProcess, key: string, jobsetId: string): Promise<{ answer: Promise<number | string> }> {
  const body = JSON.stringify({ jobset_id: jobsetId });
  return new Promise((sent) => {
    const answer = new Promise<number | string>((resolve) => {
      const req = http.request(`${api.url}/api/v1/evaluations/trigger`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      });
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', (err) => resolve(err.message));
      });
      req.on('error', (err) => resolve(err.message));
      req.end(body, () => sent({ answer }));
    });
  });
}

/** The evaluations of the jobset, oldest first. */
async function evaluationsOf(stack: TestStack, jobsetId: string): Promise<Array<Record<string, any>>> {
  return stack.db('evaluations').where({ jobset_id: jobsetId }).orderBy('created_at', 'asc');
}

/** The evaluations of the jobset made with the input nonce = value. */
async function evaluationsWithNonce(stack: TestStack, jobsetId: string, value: string): Promise<Array<Record<string, any>>> {
  return stack.db('evaluations as e')
    .join('evaluation_inputs as i', 'i.evaluation_id', 'e.id')
    .where({ 'e.jobset_id': jobsetId, 'i.name': 'nonce', 'i.value': value })
    .select('e.*');
}

/** How many CheckJobsetWorkflows this stack's task queue has had, and how many still run. */
async function checkCounts(stack: TestStack): Promise<{ total: number; running: number }> {
  const base = `WorkflowType = 'CheckJobsetWorkflow' AND TaskQueue = '${stack.taskQueue}'`;
  const [total, running] = await Promise.all([
    stack.temporal.client.workflow.count(base),
    stack.temporal.client.workflow.count(`${base} AND ExecutionStatus = 'Running'`),
  ]);
  return { total: total.count, running: running.count };
}

/**
 * Waits until every CheckJobsetWorkflow that a trigger started has finished: none runs, and the number
 * of them stays the same over a second (visibility records may trail a start by a moment).
 */
async function checksSettled(stack: TestStack): Promise<void> {
  let previous: { total: number; at: number } | undefined;
  await eventually('every check to finish', async () => {
    const { total, running } = await checkCounts(stack);
    if (running > 0) {
      previous = undefined;
      return undefined;
    }
    if (previous?.total === total && Date.now() - previous.at >= 1_000) return true;
    if (previous?.total !== total) previous = { total, at: Date.now() };
    return undefined;
  }, 120_000, 250);
}

/** An evaluation that exists is whole: its inputs, a completed workflow, a build per job, every build finished. */
async function assertWhole(stack: TestStack, evaluation: Record<string, any>): Promise<void> {
  const finished = await waitForEvaluation(stack, evaluation.id, 180_000);
  assert.equal(finished.status, 'completed', `evaluation ${evaluation.id}: ${finished.error_message}`);
  const inputs = await stack.db('evaluation_inputs').where({ evaluation_id: evaluation.id });
  assert.deepEqual(inputs.map((i) => i.name), ['nonce'], `evaluation ${evaluation.id}: its inputs`);
  const handle = stack.temporal.client.workflow.getHandle(evaluationWorkflowId(evaluation.id));
  const result = await handle.result();
  assert.equal(result.status, 'completed', `evaluation ${evaluation.id}: its workflow's result`);
  assert.equal((await handle.describe()).status.name, 'COMPLETED', `evaluation ${evaluation.id}: its workflow`);
  const builds = await waitForBuilds(stack, evaluation.id, { timeoutMs: 180_000 });
  assert.deepEqual(Object.keys(builds).sort(), JOBS, `evaluation ${evaluation.id}: a build per job`);
}

describe('kill -9 of the API process during a trigger', () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let jobsetId: string;
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-kill-api-log-'));
  const apis: ApiProcess[] = [];
  const survived: string[] = [];

  /** A fresh input value, so that the next trigger evaluates new inputs instead of answering an earlier evaluation. */
  const changeInputs = async (): Promise<string> => {
    const value = nonce();
    await stack.db('jobset_inputs').where({ jobset_id: jobsetId, name: 'nonce' }).update({ value });
    return value;
  };
  const startApi = async () => {
    const api = await spawnApi(stack, path.join(logDir, `api-${apis.length + 1}.log`));
    apis.push(api);
    return api;
  };

  before(async () => {
    stack = await startTestStack();
    repo = await makeTwoJobsRepo();
    jobsetId = (await createJobset(stack, repo.url, { inputs: { nonce: nonce() } })).jobsetId;
  });
  after(async () => {
    console.error(`[faults] kill -9 of the API during a trigger: ${survived.join('; ')}`);
    for (const api of apis) await killNine(api);
    await stack?.stop();
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
    fs.rmSync(logDir, { recursive: true, force: true });
  });

  it('killed while the trigger waits on its workflow (no worker polls): the evaluation is made whole once a worker runs', async () => {
    await stack.stopWorker();
    await changeInputs();
    const api = await startApi();
    const before = (await evaluationsOf(stack, jobsetId)).length;
    const { answer } = await sendTrigger(api, stack.adminKey, jobsetId);
    await eventually('the trigger to have started its CheckJobsetWorkflow', async () => ((await checkCounts(stack)).running > 0 ? true : undefined), 60_000, 100);
    await killNine(api);
    assert.equal(typeof (await answer), 'string', 'the client saw the connection drop, not an answer');
    assert.equal((await evaluationsOf(stack, jobsetId)).length, before, 'nothing is written before a worker runs the check');

    await stack.startWorker();
    await checksSettled(stack);
    const evaluations = await evaluationsOf(stack, jobsetId);
    assert.equal(evaluations.length, before + 1, 'the trigger Temporal accepted was completed without the API');
    await assertWhole(stack, evaluations[evaluations.length - 1]);
    survived.push('killed while waiting on its workflow → completed by the worker, whole');
  });

  it('killed once the evaluation row is written but maybe before the answer: the evaluation is whole', async () => {
    await changeInputs();
    const api = await startApi();
    const before = (await evaluationsOf(stack, jobsetId)).length;
    const { answer } = await sendTrigger(api, stack.adminKey, jobsetId);
    await eventually('the evaluation row', async () => ((await evaluationsOf(stack, jobsetId)).length > before ? true : undefined), 120_000, 5);
    await killNine(api);
    const seen = await answer;
    await checksSettled(stack);
    const evaluations = await evaluationsOf(stack, jobsetId);
    assert.equal(evaluations.length, before + 1);
    await assertWhole(stack, evaluations[evaluations.length - 1]);
    survived.push(`killed once the row existed (client saw ${seen}) → whole`);
  });

  it('killed at moments from 0 to 1000 ms after the request was sent: each evaluation exists whole or not at all', async () => {
    const delays = [0, 50, 250, 1000];
    const kills: Array<{ delay: number; nonce: string; seen: number | string }> = [];
    for (const delay of delays) {
      const value = await changeInputs();
      const api = await startApi();
      const { answer } = await sendTrigger(api, stack.adminKey, jobsetId);
      if (delay > 0) await sleep(delay);
      await killNine(api);
      kills.push({ delay, nonce: value, seen: await answer });
    }
    await checksSettled(stack);
    const outcomes: string[] = [];
    for (const kill of kills) {
      // Each kill triggered with inputs of its own, so its evaluation (if any) is the one with its nonce.
      const evaluations = await evaluationsWithNonce(stack, jobsetId, kill.nonce);
      assert.ok(evaluations.length <= 1, `at most one evaluation per trigger (killed after ${kill.delay} ms)`);
      if (evaluations.length === 1) await assertWhole(stack, evaluations[0]);
      if (kill.seen === 202) assert.equal(evaluations.length, 1, 'a 202 means the evaluation exists');
      outcomes.push(`${kill.delay} ms: ${evaluations.length === 1 ? 'whole' : 'none'} (client saw ${kill.seen})`);
    }
    survived.push(`timed kills: ${outcomes.join(', ')}`);
  });

  it('every evaluation of the jobset is whole, and a new API process triggers as before', async () => {
    for (const evaluation of await evaluationsOf(stack, jobsetId)) await assertWhole(stack, evaluation);
    await changeInputs();
    const api = await startApi();
    const res = await fetch(`${api.url}/api/v1/evaluations/trigger`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jobset_id: jobsetId }),
    });
    assert.equal(res.status, 202, await res.text());
    const total = (await evaluationsOf(stack, jobsetId)).length;
    survived.push(`${total} evaluations in all, each whole`);
  });
});
