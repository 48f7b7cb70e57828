import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ScheduleNotFoundError } from '@temporalio/client';
import { startTestStack, type TestStack } from '../support/stack';
import { pidsWithCommandLine } from '../support/sshd';
import { makeGitRepo, type GitFixtureRepo } from '../support/git-fixture';
import { buildsOf, createJobset, eventually, JOBSET_FIXTURE, nonce, sleep, trigger, waitForBuilds, waitForEvaluation, type CreatedJobset } from '../support/pipeline';
import { dispatcherStateQuery, dispatcherWorkflowId, derivationWorkflowId } from '../../workflows/shared';
import { jobsetScheduleId } from '../../api/jobset-schedules';

const LIFECYCLE_FIXTURE = path.resolve(__dirname, '..', 'fixtures', 'lifecycle');
const LOG_LIMIT_BYTES = 20_000;

interface SseEvent {
  event: string;
  data: string;
  at: number;
}

/** Reads a Server-Sent Events response until `event: end` (or the stream closes), calling onEvent for each message. */
async function readSse(url: string, onEvent: (e: SseEvent) => void | Promise<void>, timeoutMs = 60_000): Promise<{ events: SseEvent[]; closed: boolean }> {
  const abort = AbortSignal.timeout(timeoutMs);
  const res = await fetch(url, { signal: abort });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const events: SseEvent[] = [];
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return { events, closed: true };
    buffer += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const message = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const lines = message.split('\n').filter((l) => !l.startsWith(':'));
      if (lines.length === 0) continue;
      const event = lines.find((l) => l.startsWith('event:'))?.slice('event:'.length).trim() ?? 'message';
      const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice('data:'.length).replace(/^ /, '')).join('\n');
      const e = { event, data, at: Date.now() };
      events.push(e);
      await onEvent(e);
      if (event === 'end') {
        // The server ends the response right after `end`.
        const rest = await reader.read();
        return { events, closed: rest.done === true };
      }
    }
  }
}

/** Whether a Nix evaluation of a jobset with this (unique) gate input still runs: its arguments name the gate. */
function evaluatorRunning(gate: string): boolean {
  return pidsWithCommandLine(gate).some((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('ringmasterWalker');
    } catch {
      return false;
    }
  });
}

/** Writes to the FIFO if someone reads it (so a blocked evaluation goes on); false when nobody does. */
function releaseFifo(fifo: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENXIO') return false;
    throw err;
  }
  try {
    fs.writeSync(fd, 'go\n');
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

async function stepOf(stack: TestStack, build: Record<string, any>): Promise<Record<string, any> | undefined> {
  return stack.db('build_steps').where({ build_id: build.id, drv_path: build.drv_path }).first();
}

/**
 * Build lifecycle on real parts: Temporal, PostgreSQL, the worker, and the worker's own Nix as the
 * only builder (no remote builders: the local fallback) with one slot, so queued steps really queue.
 * Every jobset gets a fresh nonce (`greeting`) and its own gate directory, so no store path is shared
 * with another test.
 */
describe('build lifecycle on the local fallback builder with one slot', () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let gate: string;
  const repos: GitFixtureRepo[] = [];
  const greeting = `life-${nonce()}`;
  let supersede: { repo: GitFixtureRepo; jobset: CreatedJobset; older: string; newer: string } | undefined;

  const release = (name: string) => fs.writeFileSync(path.join(gate, name), 'go\n');
  const jobsetFor = (part: string, repoUrl = repo.url) => createJobset(stack, repoUrl, { expression: 'lifecycle.nix', inputs: { greeting, gate, part } });
  const newRepo = async () => {
    const r = await makeGitRepo(LIFECYCLE_FIXTURE);
    repos.push(r);
    return r;
  };

  before(async () => {
    stack = await startTestStack({ worker: true, env: { RINGMASTER_LOCAL_MAX_JOBS: '1', RINGMASTER_LOG_LIMIT_BYTES: String(LOG_LIMIT_BYTES) } });
    gate = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-lifecycle-gate-'));
    // Builds may run as nixbld users: they must see the gate files.
    fs.chmodSync(gate, 0o755);
    repo = await newRepo();
  });
  after(async () => {
    // Whatever a failed test left waiting is released, so no build holds the slot or a sleeping shell.
    if (gate) for (const name of ['release-blocker', 'release-change', 'release-keep']) fs.writeFileSync(path.join(gate, name), 'go\n');
    if (gate && fs.existsSync(path.join(gate, 'eval-gate'))) releaseFifo(path.join(gate, 'eval-gate'));
    await stack?.stop();
    for (const r of repos) fs.rmSync(r.dir, { recursive: true, force: true });
    if (gate) fs.rmSync(gate, { recursive: true, force: true });
  });

  it('the configuration given to the test stack reaches the worker: one local slot, a 20000-byte log limit', () => {
    assert.equal(stack.config.localMaxJobs, 1);
    assert.equal(stack.config.logLimitBytes, LOG_LIMIT_BYTES);
  });

  it('a bump moves a queued step ahead of older ones of the same priority, without restarting any build', async () => {
    const blockerSet = await jobsetFor('blocker');
    const blockerEval = await trigger(stack, blockerSet.jobsetId);
    const blocker = (await eventually('the blocker build', async () => (await buildsOf(stack, blockerEval.id)).blocker)) as Record<string, any>;
    await eventually('the blocker to hold the only slot', async () => {
      const step = await stepOf(stack, blocker);
      return step?.status === 'running' && step.phase === 'building' ? step : undefined;
    }, 60_000);

    const queueSet = await jobsetFor('queue');
    const queueEval = await trigger(stack, queueSet.jobsetId);
    assert.equal((await waitForEvaluation(stack, queueEval.id)).status, 'completed');
    const queued = await eventually('p1, p2 and p3 to queue for the slot', async () => {
      const builds = await buildsOf(stack, queueEval.id);
      for (const job of ['p1', 'p2', 'p3']) {
        const step = builds[job] && (await stepOf(stack, builds[job]));
        if (step?.phase !== 'queued') throw new Error(`${job}'s step is ${step?.status}/${step?.phase}`);
      }
      return builds;
    }, 60_000);
    assert.equal((await stepOf(stack, blocker))?.status, 'running', 'the blocker still holds the slot');
    for (const job of ['p1', 'p2', 'p3']) assert.equal(queued[job].priority, 100);

    const bumped = await stack.request('POST', `/api/v1/builds/${queued.p3.id}/bump`, { key: stack.adminKey, body: {} });
    assert.equal(bumped.status, 200, bumped.text);
    assert.ok(bumped.body.priority > 100, `bumped priority ${bumped.body.priority}`);
    // The new priority reaches the dispatcher's queue before the slot frees.
    const dispatcher = stack.temporal.client.workflow.getHandle(dispatcherWorkflowId(stack.taskQueue));
    await eventually("p3's queued request to carry the new priority", async () => {
      const state = await dispatcher.query(dispatcherStateQuery);
      const p3 = state.queue.find((q) => q.requestId === derivationWorkflowId(stack.taskQueue, queued.p3.drv_path));
      return p3 && p3.priority === bumped.body.priority ? p3 : undefined;
    }, 30_000);

    release('release-blocker');
    const done = await waitForBuilds(stack, queueEval.id, { timeoutMs: 60_000 });
    for (const job of ['p1', 'p2', 'p3']) {
      assert.equal(done[job].status, 'succeeded', job);
      assert.equal(done[job].retry_count, 0, `${job} was not restarted`);
    }
    assert.equal(done.p3.priority, bumped.body.priority);
    const started = async (job: string) => new Date((await stepOf(stack, done[job]))!.started_at).getTime();
    const [t1, t2, t3] = [await started('p1'), await started('p2'), await started('p3')];
    assert.ok(t3 < t1 && t3 < t2, `p3 started at ${t3}, p1 at ${t1}, p2 at ${t2}`);
    const blockerDone = await waitForBuilds(stack, blockerEval.id, { timeoutMs: 30_000 });
    assert.equal(blockerDone.blocker.status, 'succeeded');
  });

  it('a job past its meta.timeout ends as timeout and one past the log limit as log_limit_exceeded; the others succeed', async () => {
    const limits = await jobsetFor('limits');
    const evaluation = await trigger(stack, limits.jobsetId);
    const builds = await waitForBuilds(stack, evaluation.id, { timeoutMs: 90_000 });

    assert.equal(builds.sleepy.meta_timeout, 2, 'meta.timeout is recorded');
    assert.equal(builds.sleepy.status, 'timeout', builds.sleepy.error_message);
    const sleptMs = new Date(builds.sleepy.completed_at).getTime() - new Date(builds.sleepy.started_at).getTime();
    assert.ok(sleptMs < 15_000, `the 20 s sleep was stopped early (the build took ${sleptMs} ms)`);

    assert.equal(builds.loud.status, 'log_limit_exceeded', builds.loud.error_message);
    assert.match(builds.loud.error_message, /20000 bytes/);
    const loudLog = await stack.request('GET', `/api/v1/builds/${builds.loud.id}/log`);
    assert.equal(loudLog.status, 200);
    assert.match(loudLog.text, /loud line 0:/);
    assert.doesNotMatch(loudLog.text, /loud line 1999:/, 'the log stops at the limit');
    assert.ok(Buffer.byteLength(loudLog.text) < LOG_LIMIT_BYTES + 4096, `the stored log has ${Buffer.byteLength(loudLog.text)} bytes`);

    assert.equal(builds.quiet.status, 'succeeded');
    const quietLog = await stack.request('GET', `/api/v1/builds/${builds.quiet.id}/log`);
    assert.match(quietLog.text, new RegExp(`quiet says ${greeting}`));
    assert.equal(fs.readFileSync(builds.quiet.build_output_path, 'utf8').trim(), 'quiet');

    // Failures of this kind are remembered per derivation.
    const cached = await stack.db('cached_failures').whereIn('drv_path', [builds.sleepy.drv_path, builds.loud.drv_path]).orderBy('status');
    assert.deepEqual(cached.map((c) => c.status), ['log_limit_exceeded', 'timeout']);
  });

  it('the log stream sends lines while the build runs, then `end`; for a finished build the whole log, then `end`', async () => {
    const streamSet = await jobsetFor('stream');
    const evaluation = await trigger(stack, streamSet.jobsetId);
    const ticker = (await eventually('the ticker build', async () => (await buildsOf(stack, evaluation.id)).ticker)) as Record<string, any>;

    const url = `${stack.url}/api/v1/builds/${ticker.id}/log/stream`;
    let statusAtFirstTick: string | undefined;
    const live = await readSse(url, async (e) => {
      if (statusAtFirstTick === undefined && /tick 1/.test(e.data)) {
        statusAtFirstTick = (await stack.db('builds').where({ id: ticker.id }).first()).status;
      }
    });
    assert.equal(statusAtFirstTick, 'running', 'the first line came while the build was still running');
    assert.ok(live.closed, 'the stream ends after `end`');
    assert.equal(live.events.at(-1)?.event, 'end');
    const text = live.events.filter((e) => e.event === 'message').map((e) => e.data).join('\n');
    for (let i = 1; i <= 6; i++) assert.match(text, new RegExp(`tick ${i}\\b`));
    const tickAt = (n: number) => live.events.find((e) => e.event === 'message' && new RegExp(`tick ${n}\\b`).test(e.data))!.at;
    assert.ok(tickAt(6) - tickAt(1) >= 1500, `lines came as printed: tick 1 → tick 6 in ${tickAt(6) - tickAt(1)} ms`);

    const finished = (await waitForBuilds(stack, evaluation.id, { timeoutMs: 30_000 })).ticker;
    assert.equal(finished.status, 'succeeded');
    const whole = await readSse(url, () => undefined, 15_000);
    assert.ok(whole.closed);
    assert.equal(whole.events.at(-1)?.event, 'end');
    const wholeText = whole.events.filter((e) => e.event === 'message').map((e) => e.data).join('\n');
    const plain = await stack.request('GET', `/api/v1/builds/${ticker.id}/log`);
    assert.equal(plain.status, 200);
    for (let i = 1; i <= 6; i++) assert.match(wholeText, new RegExp(`tick ${i}\\b`));
    assert.equal(wholeText.replace(/\n+$/, ''), plain.text.replace(/\n+$/, ''), 'the stream of a finished build is its whole log');
  });

  it('a newer evaluation supersedes an older one still evaluating, cancelling the older builds nothing newer wants', async () => {
    const superRepo = await newRepo();
    const fifo = path.join(gate, 'eval-gate');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
    const jobset = await jobsetFor('supersede', superRepo.url);

    // Stage 1: its first batch (two jobs and 100 evaluation errors) is recorded, then evaluating `tail`
    // blocks on the FIFO.
    const older = await trigger(stack, jobset.jobsetId);
    const olderBuilds = await eventually('the older evaluation to record its first batch', async () => {
      // A batch writes its errors, then its builds: wait for both, not only the errors.
      const errors = await stack.db('evaluation_errors').where({ evaluation_id: older.id }).count<{ count: string }[]>('* as count');
      const builds = await buildsOf(stack, older.id);
      return Number(errors[0].count) >= 100 && Object.keys(builds).length > 0 ? builds : undefined;
    }, 60_000);
    assert.deepEqual(Object.keys(olderBuilds).sort(), ['change', 'keep'], 'the first batch (BATCH = 100 in activities/evaluation.ts)');
    // Both builds have started, so the evaluation's activity has long finished recording the batch and
    // only waits for Nix: a cancellation must reach an activity that is just waiting.
    await eventually('the first batch to start building', async () => {
      const open = Object.values(await buildsOf(stack, older.id)).filter((b) => b.status === 'pending');
      return open.length === 0 ? true : undefined;
    }, 60_000);
    await sleep(2_000);
    assert.ok(evaluatorRunning(gate), "the older evaluation's Nix is blocked reading the FIFO");
    assert.equal((await stack.db('evaluations').where({ id: older.id }).first()).status, 'running');

    // Stage 2: `change` is another derivation; `keep` the same one.
    const commit = await superRepo.commitChange('stage', '2\n');
    const newer = await trigger(stack, jobset.jobsetId);
    assert.equal(newer.created, true);
    assert.equal(newer.commit_hash, commit);
    assert.equal((await waitForEvaluation(stack, newer.id)).status, 'completed');
    const newerBuilds = await buildsOf(stack, newer.id);
    assert.deepEqual(Object.keys(newerBuilds).sort(), ['change', 'keep', 'tail']);
    assert.notEqual(newerBuilds.change.drv_path, olderBuilds.change.drv_path);
    assert.equal(newerBuilds.keep.drv_path, olderBuilds.keep.drv_path);

    const superseded = await eventually('the older evaluation to be superseded', async () => {
      const row = await stack.db('evaluations').where({ id: older.id }).first();
      if (!row.superseded_by) {
        const rows = await stack.db('evaluations').where({ jobset_id: jobset.jobsetId }).orderBy('created_at');
        throw new Error(`evaluations: ${rows.map((r) => `${r.id === older.id ? 'older' : 'newer'} ${r.status} ${r.branch} ${new Date(r.created_at).toISOString()}`).join('; ')}`);
      }
      return row;
    }, 30_000);
    assert.equal(superseded.superseded_by, newer.id);
    assert.equal(superseded.status, 'cancelled');

    const afterSupersede = await eventually("the older evaluation's change to be cancelled", async () => {
      const builds = await buildsOf(stack, older.id);
      return builds.change.status === 'cancelled' ? builds : undefined;
    }, 30_000);
    assert.ok(['pending', 'running'].includes(afterSupersede.keep.status), 'keep, which the newer evaluation also wants, goes on');

    // The superseded evaluation's own Nix stops: it neither evaluates nor records anything more.
    await eventually("the superseded evaluation's Nix to be stopped", async () => (evaluatorRunning(gate) ? undefined : true), 15_000);
    // Were it still blocked, this would let it go on; nothing may come of it.
    releaseFifo(fifo);
    await sleep(2_000);
    const finalOlder = await buildsOf(stack, older.id);
    assert.deepEqual(Object.keys(finalOlder).sort(), ['change', 'keep'], 'nothing of the superseded evaluation was recorded after it was superseded');

    supersede = { repo: superRepo, jobset, older: older.id, newer: newer.id };
  });

  it('an older evaluation that had completed is left alone: its builds go on though the newest evaluation does not want them', async () => {
    assert.ok(supersede, 'needs the superseding test before it');
    const { repo: superRepo, jobset, older, newer } = supersede;
    const newerChange = (await buildsOf(stack, newer)).change;
    assert.ok(['pending', 'running'].includes(newerChange.status), "the second evaluation's change still waits for its gate");

    // Stage 3: `change` is yet another derivation.
    await superRepo.commitChange('stage', '3\n');
    const newest = await trigger(stack, jobset.jobsetId);
    assert.equal(newest.created, true);
    // The evaluation workflow supersedes what it supersedes, then starts its builds' workflows: once that
    // activity runs (or the workflow has returned), superseding is over. (It may not return yet: a build of
    // the newest evaluation whose derivation a running batch realises as an extra, `keep` gated here, is
    // held back without a workflow until that derivation ends.)
    await eventually('the newest evaluation to be past superseding', async () => {
      const description = await stack.temporal.client.workflow.getHandle(`eval-${newest.id}`).describe();
      if (description.status.name === 'COMPLETED') return true;
      return (description.raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'startBuildWorkflowsOfEvaluation') ? true : undefined;
    }, 60_000, 100);
    const newestBuilds = await buildsOf(stack, newest.id);
    assert.notEqual(newestBuilds.change.drv_path, newerChange.drv_path);

    const second = await stack.db('evaluations').where({ id: newer }).first();
    assert.equal(second.status, 'completed');
    assert.equal(second.superseded_by, null);
    assert.ok(['pending', 'running'].includes((await buildsOf(stack, newer)).change.status), "the completed evaluation's unwanted build was not cancelled");

    release('release-keep');
    release('release-change');
    for (const id of [newer, newest.id]) {
      const done = await waitForBuilds(stack, id, { timeoutMs: 60_000 });
      assert.deepEqual(Object.fromEntries(Object.entries(done).map(([k, v]) => [k, v.status])), { change: 'succeeded', keep: 'succeeded', tail: 'succeeded' });
    }
    const olderKeep = await eventually('the first evaluation\'s keep to finish', async () => {
      const b = (await buildsOf(stack, older)).keep;
      return ['pending', 'running'].includes(b.status) ? undefined : b;
    }, 30_000);
    assert.equal(olderKeep.status, 'succeeded');
  });

  it('a jobset with a check interval is checked by its Temporal Schedule; without a new commit no new evaluation; interval 0 removes the schedule', async () => {
    // The schedule may check the jobset before any input exists: the repository itself holds the nonce.
    const intervalRepo = await newRepo();
    await intervalRepo.commitChange('greeting', `${greeting}-interval\n`);
    const head = await intervalRepo.commitChange('part', 'interval\n');
    const project = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body: { name: `interval-${nonce()}`, repository_url: intervalRepo.url } });
    assert.equal(project.status, 200, project.text);
    const created = await stack.request('POST', `/api/v1/projects/${project.body.id}/jobsets`, {
      key: stack.adminKey,
      body: { name: 'main', nix_expression: 'lifecycle.nix', check_interval: 2, trigger_mode: 'source_change' },
    });
    assert.equal(created.status, 200, created.text);
    const jobsetId: string = created.body.id;
    const schedule = stack.temporal.client.schedule.getHandle(jobsetScheduleId(jobsetId));
    const description = await schedule.describe();
    assert.equal(description.action.type, 'startWorkflow');

    const first = await eventually('an evaluation started by the schedule', async () => {
      const rows = await stack.db('evaluations').where({ jobset_id: jobsetId });
      return rows.length > 0 ? rows : undefined;
    }, 15_000);
    assert.equal(first.length, 1);
    assert.equal(first[0].trigger_kind, 'interval');
    assert.equal(first[0].commit_hash, head);
    assert.equal((await waitForEvaluation(stack, first[0].id)).status, 'completed');

    // Later checks happen (last_checked_at moves on) but find the same inputs: no new evaluation.
    const checkedAt = async () => new Date((await stack.db('jobsets').where({ id: jobsetId }).first()).last_checked_at).getTime();
    const firstCheck = await checkedAt();
    await eventually('two more scheduled checks', async () => ((await checkedAt()) >= firstCheck + 3_000 ? true : undefined), 20_000);
    const evaluations = await stack.db('evaluations').where({ jobset_id: jobsetId });
    assert.deepEqual(evaluations.map((e) => e.id), [first[0].id]);
    const builds = await waitForBuilds(stack, first[0].id, { timeoutMs: 60_000 });
    assert.equal(builds.tick.status, 'succeeded');

    const off = await stack.request('PUT', `/api/v1/projects/${project.body.id}/jobsets/${jobsetId}`, { key: stack.adminKey, body: { check_interval: 0 } });
    assert.equal(off.status, 200, off.text);
    assert.equal(off.body.check_interval, 0);
    await assert.rejects(schedule.describe(), ScheduleNotFoundError);
  });

  it('a flake jobset (hydraJobs) evaluates and builds', async () => {
    const flakeRepo = await makeGitRepo(JOBSET_FIXTURE);
    repos.push(flakeRepo);
    await flakeRepo.commitChange('greeting', `${greeting}-flake\n`);
    const jobset: CreatedJobset = await createJobset(stack, flakeRepo.url, { flake: true });
    const evaluation = await trigger(stack, jobset.jobsetId);
    assert.equal(evaluation.created, true);
    const evaluated = await waitForEvaluation(stack, evaluation.id);
    assert.equal(evaluated.status, 'completed', evaluated.error_message);
    // The fixture's slow job sleeps for five minutes: it is cancelled before it can hold the only slot.
    const recorded = await buildsOf(stack, evaluation.id);
    const cancel = await stack.request('POST', `/api/v1/builds/${recorded.slow.id}/cancel`, { key: stack.adminKey, body: {} });
    assert.equal(cancel.status, 200, cancel.text);

    const builds = await waitForBuilds(stack, evaluation.id, { timeoutMs: 120_000 });
    for (const job of ['a', 'b', 'c']) assert.equal(builds[job].status, 'succeeded', `${job}: ${builds[job].error_message}`);
    assert.equal(fs.readFileSync(builds.c.build_output_path, 'utf8').trim(), `${greeting}-flake from a, then b, then c`);
    assert.equal(builds.slow.status, 'cancelled');
  });
});
