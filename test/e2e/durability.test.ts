import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { temporal } from '@temporalio/proto';
import { startTestStack, type TestStack } from '../support/stack';
import { makeGitRepo, type GitFixtureRepo } from '../support/git-fixture';
import { buildsOf, createJobset, eventually, nonce, sleep, trigger, waitForBuilds, waitForEvaluation } from '../support/pipeline';
import { freePort } from '../../lib/processes';
import { findTemporalCli, MISSING_CLI_MESSAGE, startTemporalDevServer, type RunningDevServer } from '../../lib/temporal-dev-server';
import { buildWorkflowId, derivationWorkflowId } from '../../workflows/shared';

/**
 * Durability on real parts: the worker machine dies (kill -9 of the worker and every process it
 * started, nix-store and the builder included) and the Temporal dev server restarts on its SQLite
 * file, both while builds run. Either way every build finishes, once, with the right status.
 */

const ROOT = path.resolve(__dirname, '..', '..');
const EventType = temporal.api.enums.v1.EventType;

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

async function makeSleepyRepo(): Promise<GitFixtureRepo> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-sleepy-'));
  fs.writeFileSync(path.join(dir, 'release.nix'), SLEEPY_RELEASE_NIX);
  try {
    return await makeGitRepo(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Counts every write of a new completed_at to a build row (a second finish would write another). */
async function recordCompletedAtWrites(stack: TestStack): Promise<void> {
  await stack.db.raw(`
    CREATE TABLE test_completed_at_writes (build_id uuid NOT NULL, completed_at timestamptz NOT NULL);
    CREATE FUNCTION test_note_completed_at() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO test_completed_at_writes VALUES (NEW.id, NEW.completed_at);
      RETURN NEW;
    END $$;
    CREATE TRIGGER test_completed_at_writes AFTER UPDATE ON builds FOR EACH ROW
      WHEN (NEW.completed_at IS NOT NULL AND NEW.completed_at IS DISTINCT FROM OLD.completed_at)
      EXECUTE FUNCTION test_note_completed_at();
  `);
}

/** Each build finished exactly once: one run of its workflow, one completed_at write, no duplicate outputs. */
async function assertFinishedOnce(stack: TestStack, evaluationId: string): Promise<void> {
  const builds = await buildsOf(stack, evaluationId);
  for (const [job, build] of Object.entries(builds)) {
    const handle = stack.temporal.client.workflow.getHandle(buildWorkflowId(build.id));
    const description = await handle.describe();
    assert.equal(description.status.name, 'COMPLETED', `${job}: workflow status`);
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const count = (type: temporal.api.enums.v1.EventType) => events.filter((e) => e.eventType === type).length;
    assert.equal(count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED), 1, `${job}: one start`);
    assert.equal(count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED), 1, `${job}: one completion`);
    const started = events[0].workflowExecutionStartedEventAttributes;
    assert.equal(started?.firstExecutionRunId, description.runId, `${job}: the only run is the first run`);
    assert.equal(started?.continuedExecutionRunId ?? '', '', `${job}: not a continuation of another run`);

    const outputs = await stack.db('build_outputs').where({ build_id: build.id });
    assert.equal(new Set(outputs.map((o) => o.name)).size, outputs.length, `${job}: no duplicate outputs`);
    assert.equal(outputs.length, build.status === 'succeeded' ? 1 : 0, `${job}: outputs recorded`);
    assert.ok(build.completed_at, `${job}: completed_at`);
    const writes = await stack.db('test_completed_at_writes').where({ build_id: build.id });
    assert.equal(writes.length, 1, `${job}: completed_at written once`);
  }
}

/** The attempt numbers with which the derivation's realiseStep activity started (the last one is the one that counted). */
async function realiseAttempts(stack: TestStack, drvPath: string): Promise<number[]> {
  const history = await stack.temporal.client.workflow.getHandle(derivationWorkflowId(stack.taskQueue, drvPath)).fetchHistory();
  const events = history.events ?? [];
  const scheduled = new Set(
    events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'realiseStep').map((e) => String(e.eventId)),
  );
  return events
    .filter((e) => e.activityTaskStartedEventAttributes && scheduled.has(String(e.activityTaskStartedEventAttributes.scheduledEventId)))
    .map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 0);
}

interface ProcInfo {
  pid: number;
  ppid: number;
  cmdline: string;
}

function processTable(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      out.push({ pid: Number(entry), ppid, cmdline });
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** Every live descendant of pid (nix-store runs in its own process group, so the worker's group is not enough). */
function descendantsOf(pid: number): ProcInfo[] {
  const table = processTable();
  const found: ProcInfo[] = [];
  const frontier = [pid];
  while (frontier.length > 0) {
    const parent = frontier.pop()!;
    for (const p of table) {
      if (p.ppid === parent) {
        found.push(p);
        frontier.push(p.pid);
      }
    }
  }
  return found;
}

/** Exited (or a zombie nobody reaped yet: orphans go to PID 1, which may be slow to reap). */
function isGone(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

/**
 * The machine dies: freezes the worker's process group and every descendant (SIGSTOP, until no new
 * process appears, so nothing forks past us), then SIGKILLs them all. Returns what was killed.
 */
async function killLikeAPowerCut(worker: ChildProcess): Promise<ProcInfo[]> {
  const root = worker.pid!;
  signal(-root, 'SIGSTOP');
  const frozen = new Map<number, ProcInfo>();
  for (let stable = 0; stable < 2; ) {
    const fresh = descendantsOf(root).filter((p) => !frozen.has(p.pid));
    stable = fresh.length === 0 ? stable + 1 : 0;
    for (const p of fresh) {
      signal(p.pid, 'SIGSTOP');
      frozen.set(p.pid, p);
    }
    await sleep(20);
  }
  const exited = new Promise<void>((resolve) => (worker.exitCode !== null || worker.signalCode !== null ? resolve() : worker.once('exit', () => resolve())));
  signal(-root, 'SIGKILL');
  for (const pid of frozen.keys()) signal(pid, 'SIGKILL');
  await exited;
  return [...frozen.values()];
}

/** `node bin/ringmaster.js worker` as its own process (group), with no remote builder: builds run on its own Nix. */
function spawnWorkerProcess(stack: TestStack, logFile: string): ChildProcess {
  const out = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'ringmaster.js'), 'worker'], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', out, out],
    env: {
      ...process.env,
      DATABASE_URL: stack.databaseUrl,
      TEMPORAL_ADDRESS: stack.temporalAddress,
      RINGMASTER_TASK_QUEUE: stack.taskQueue,
      RINGMASTER_DATA_DIR: stack.dataDir,
    },
  });
  fs.closeSync(out);
  return child;
}

async function waitForBuildingStep(stack: TestStack, buildId: string): Promise<void> {
  await eventually(`a step of build ${buildId} to be building`, async () => {
    const step = await stack.db('build_steps').where({ build_id: buildId, status: 'running', phase: 'building' }).first();
    return step ? true : undefined;
  }, 90_000, 100);
}

function statusesOf(builds: Record<string, Record<string, any>>): Record<string, string> {
  return Object.fromEntries(Object.entries(builds).map(([job, b]) => [job, b.status]));
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
  after(async () => {
    for (const w of workers) {
      if (w.pid !== undefined && w.exitCode === null && w.signalCode === null) {
        const exited = new Promise((resolve) => w.once('exit', resolve));
        signal(-w.pid, 'SIGTERM');
        const timer = setTimeout(() => signal(-w.pid!, 'SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
    }
    await stack?.stop();
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
    fs.rmSync(logDir, { recursive: true, force: true });
  });

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
    // The killed step was retried once, by the new worker (after the 20 s heartbeat timeout).
    assert.deepEqual(await realiseAttempts(stack, builds.one.drv_path), [2]);
    const step = await stack.db('build_steps').where({ build_id: builds.one.id, drv_path: builds.one.drv_path }).first();
    assert.ok(new Date(step.started_at).getTime() >= killedAt, 'the step that counted started after the kill');
    assert.equal(step.status, 'succeeded');
  });

  it('each build finished exactly once: one workflow run, one completion, no duplicate rows', async () => {
    await assertFinishedOnce(stack, evaluationId);
  });
});

/** 50 independent jobs that each sleep a second; every tenth fails. */
const BATCH_SIZE = 50;
const BATCH_RELEASE_NIX = `{ nonce ? "x", system ? builtins.currentSystem }:
let
  job = i: derivation {
    name = "b\${toString i}";
    inherit system nonce;
    PATH = "/bin:/usr/bin";
    builder = "/bin/sh";
    args = [ "-c" (if i - (i / 10) * 10 == 9 then "sleep 1; exit 1" else "sleep 1; echo \${toString i} $nonce > $out") ];
  };
in
builtins.listToAttrs (builtins.genList (i: { name = "b\${toString i}"; value = job i; }) ${BATCH_SIZE})
`;
const BATCH_EXPECTED = Object.fromEntries(Array.from({ length: BATCH_SIZE }, (_, i) => [`b${i}`, i % 10 === 9 ? 'failed' : 'succeeded']));

describe('the worker machine dies (kill -9) in the middle of a batch of 50 builds', () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let evaluationId: string;
  const workers: ChildProcess[] = [];
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-durability-batch-'));
  let finishedBeforeKill = 0;

  before(async () => {
    stack = await startTestStack({ worker: false });
    await recordCompletedAtWrites(stack);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-batch-'));
    fs.writeFileSync(path.join(dir, 'release.nix'), BATCH_RELEASE_NIX);
    try {
      repo = await makeGitRepo(dir);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const jobset = await createJobset(stack, repo.url, { inputs: { nonce: nonce() } });
    workers.push(spawnWorkerProcess(stack, path.join(logDir, 'worker-1.log')));
    evaluationId = (await trigger(stack, jobset.jobsetId)).id;
  });
  after(async () => {
    for (const w of workers) {
      if (w.pid !== undefined && w.exitCode === null && w.signalCode === null) {
        const exited = new Promise((resolve) => w.once('exit', resolve));
        signal(-w.pid, 'SIGTERM');
        const timer = setTimeout(() => signal(-w.pid!, 'SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
    }
    await stack?.stop();
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
    fs.rmSync(logDir, { recursive: true, force: true });
  });

  it('the worker and its builds are killed while some builds have finished and others run', async () => {
    const evaluation = await waitForEvaluation(stack, evaluationId);
    assert.equal(evaluation.status, 'completed', evaluation.error_message);
    await eventually('a few builds to finish and a step to be building', async () => {
      const builds = Object.values(await buildsOf(stack, evaluationId));
      const finished = builds.filter((b) => !['pending', 'running'].includes(b.status)).length;
      const building = await stack.db('build_steps as s').join('builds as b', 'b.id', 's.build_id').where({ 'b.evaluation_id': evaluationId, 's.status': 'running', 's.phase': 'building' }).first();
      return finished >= 3 && building && descendantsOf(workers[0].pid!).some((p) => p.cmdline.startsWith('sleep 1')) ? true : undefined;
    }, 300_000, 50);
    const killed = await killLikeAPowerCut(workers[0]);
    assert.ok(killed.some((p) => p.cmdline.startsWith('nix-store --realise')), 'a nix-store was among the killed');
    const builds = Object.values(await buildsOf(stack, evaluationId));
    finishedBeforeKill = builds.filter((b) => !['pending', 'running'].includes(b.status)).length;
    assert.ok(finishedBeforeKill < BATCH_SIZE, 'builds were still open at the kill');
  });

  it('after a new worker starts, every one of the 50 builds finishes with the right status', async () => {
    workers.push(spawnWorkerProcess(stack, path.join(logDir, 'worker-2.log')));
    const builds = await waitForBuilds(stack, evaluationId, { timeoutMs: 600_000 });
    console.error(`[durability] batch: ${finishedBeforeKill} of ${BATCH_SIZE} builds had finished at the kill`);
    assert.deepEqual(statusesOf(builds), BATCH_EXPECTED);
  });

  it('each of the 50 builds finished exactly once: one workflow run, one completion, no duplicate rows', async () => {
    await assertFinishedOnce(stack, evaluationId);
  });
});

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
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-shared-'));
    fs.writeFileSync(path.join(dir, 'release.nix'), SHARED_RELEASE_NIX);
    try {
      repo = await makeGitRepo(dir);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const jobset = await createJobset(stack, repo.url, { inputs: { nonce: nonce() } });
    workers.push(spawnWorkerProcess(stack, path.join(logDir, 'worker-a.log')), spawnWorkerProcess(stack, path.join(logDir, 'worker-b.log')));
    evaluationId = (await trigger(stack, jobset.jobsetId)).id;
  });
  after(async () => {
    for (const w of workers) {
      if (w.pid !== undefined && w.exitCode === null && w.signalCode === null) {
        const exited = new Promise((resolve) => w.once('exit', resolve));
        signal(-w.pid, 'SIGTERM');
        const timer = setTimeout(() => signal(-w.pid!, 'SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
    }
    await stack?.stop();
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
    fs.rmSync(logDir, { recursive: true, force: true });
  });

  it('both workers realise steps', async () => {
    const evaluation = await waitForEvaluation(stack, evaluationId);
    assert.equal(evaluation.status, 'completed', evaluation.error_message);
    await eventually('a nix-store --realise under each worker', async () => {
      for (const w of workers) if (descendantsOf(w.pid!).some((p) => p.cmdline.startsWith('nix-store --realise'))) realisedBy.add(w.pid!);
      return realisedBy.size === 2 ? true : undefined;
    }, 300_000, 50);
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
    assert.ok(base && base[1].length > 1, 'several builds waited on the shared dependency');
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
    assert.deepEqual(await realiseAttempts(stack, builds.one.drv_path), [1]);
  });

  it('each build finished exactly once: one workflow run, one completion, no duplicate rows', async () => {
    await assertFinishedOnce(stack, evaluationId);
  });
});
