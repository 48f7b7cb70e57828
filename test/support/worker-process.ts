import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import assert from 'node:assert/strict';
import { temporal } from '@temporalio/proto';
import type { TestStack } from './stack';
import { makeGitRepo, type GitFixtureRepo } from './git-fixture';
import { buildsOf, eventually, sleep } from './pipeline';
import { buildWorkflowId, dispatcherWorkflowId } from '../../workflows/shared';
import { procStat } from '../../lib/processes';

/**
 * Worker processes of a test's own (`node bin/ringmaster.js worker`), their process trees, killing
 * them like a power cut, and the checks that every build finished exactly once.
 */

const ROOT = path.resolve(__dirname, '..', '..');
const EventType = temporal.api.enums.v1.EventType;

/** Counts every write of a new completed_at to a build row (a second finish would write another). */
export async function recordCompletedAtWrites(stack: TestStack): Promise<void> {
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
export async function assertFinishedOnce(stack: TestStack, evaluationId: string): Promise<void> {
  const builds = await buildsOf(stack, evaluationId);
  for (const [job, build] of Object.entries(builds)) {
    const handle = stack.temporal.client.workflow.getHandle(buildWorkflowId(build.id));
    // The build's row is final one workflow task before its workflow closes (finishBuild runs in that task).
    const description = await eventually(`${job}: its workflow to close`, async () => {
      const d = await handle.describe();
      return d.status.name === 'RUNNING' ? undefined : d;
    }, 30_000, 100);
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


export interface ProcInfo {
  pid: number;
  ppid: number;
  cmdline: string;
}

export function processTable(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = procStat(entry);
      if (!stat) continue;
      const ppid = Number(stat(4));
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      out.push({ pid: Number(entry), ppid, cmdline });
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** Every live descendant of pid (nix-store runs in its own process group, so the worker's group is not enough). */
export function descendantsOf(pid: number): ProcInfo[] {
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
export function isGone(pid: number): boolean {
  const stat = procStat(pid);
  return !stat || stat(3) === 'Z';
}

export function signal(pid: number, sig: NodeJS.Signals): void {
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
export async function killLikeAPowerCut(worker: ChildProcess): Promise<ProcInfo[]> {
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

/**
 * Waits until a build of the evaluation has finished and a step of it is building under `worker` (a
 * `nix-store --realise` among its descendants), then kills the worker like a power cut (a nix-store must be
 * among the killed). Answers how many of the evaluation's builds had finished, and how many were still open.
 */
export async function killWorkerMidBatch(stack: TestStack, evaluationId: string, worker: ChildProcess): Promise<{ finished: number; open: number }> {
  await eventually('a build to finish and a step to be building', async () => {
    const builds = Object.values(await buildsOf(stack, evaluationId));
    const finished = builds.filter((b) => !['pending', 'running'].includes(b.status)).length;
    const building = await stack.db('build_steps as s').join('builds as b', 'b.id', 's.build_id').where({ 'b.evaluation_id': evaluationId, 's.status': 'running', 's.phase': 'building' }).first();
    return finished >= 1 && building && descendantsOf(worker.pid!).some((p) => p.cmdline.startsWith('nix-store --realise')) ? true : undefined;
  }, 300_000, 50);
  const killed = await killLikeAPowerCut(worker);
  assert.ok(killed.some((p) => p.cmdline.startsWith('nix-store --realise')), 'a nix-store was among the killed');
  const builds = Object.values(await buildsOf(stack, evaluationId));
  const open = builds.filter((b) => ['pending', 'running'].includes(b.status)).length;
  return { finished: builds.length - open, open };
}

/**
 * `node bin/ringmaster.js worker` as its own process (group), with no remote builder (builds run on its own
 * Nix), reading the stack's config file and keeping GC roots in the stack's own folder.
 */
export function spawnWorkerProcess(stack: TestStack, logFile: string, opts: { wrap?: string[]; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  return spawnRingmasterProcess(stack, 'worker', logFile, { detached: true, ...opts });
}

/**
 * `node bin/ringmaster.js <command>` as a child process against the stack's database, Temporal task
 * queue, data folder, GC roots folder and config file, its output appended to `logFile`. With `wrap`, that
 * command line runs under it (e.g. `['unshare', '--pid', '--fork', '--mount-proc']`).
 */
export function spawnRingmasterProcess(stack: TestStack, command: 'worker' | 'api', logFile: string, opts: { detached?: boolean; env?: NodeJS.ProcessEnv; wrap?: string[] } = {}): ChildProcess {
  const out = fs.openSync(logFile, 'a');
  const line = [...(opts.wrap ?? []), process.execPath, path.join(ROOT, 'bin', 'ringmaster.js'), command];
  const child = spawn(line[0], line.slice(1), {
    cwd: ROOT,
    detached: opts.detached ?? false,
    stdio: ['ignore', out, out],
    env: {
      ...process.env,
      DATABASE_URL: stack.databaseUrl,
      TEMPORAL_ADDRESS: stack.temporalAddress,
      RINGMASTER_TASK_QUEUE: stack.taskQueue,
      RINGMASTER_DATA_DIR: stack.dataDir,
      RINGMASTER_GC_ROOTS_DIR: stack.config.gcRootsDir,
      RINGMASTER_CONFIG_FILE: stack.config.configFile,
      ...opts.env,
    },
  });
  fs.closeSync(out);
  return child;
}


export function statusesOf(builds: Record<string, Record<string, any>>): Record<string, string> {
  return Object.fromEntries(Object.entries(builds).map(([job, b]) => [job, b.status]));
}


/** Stops the worker processes still running: SIGTERM to the group, SIGKILL after 10 s. */
export async function stopWorkerProcesses(workers: ChildProcess[]): Promise<void> {
  for (const w of workers) {
    if (w.pid !== undefined && w.exitCode === null && w.signalCode === null) {
      const exited = new Promise((resolve) => w.once('exit', resolve));
      signal(-w.pid, 'SIGTERM');
      const timer = setTimeout(() => signal(-w.pid!, 'SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  }
}

/**
 * A git repository whose `release.nix` is `text`. `beforeCommit` may use the folder first (e.g. build
 * the expression so that its outputs are valid); the folder itself is removed afterwards.
 */
export async function makeReleaseRepo(text: string, beforeCommit?: (releaseFile: string) => void): Promise<GitFixtureRepo> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-release-'));
  try {
    fs.writeFileSync(path.join(dir, 'release.nix'), text);
    beforeCommit?.(path.join(dir, 'release.nix'));
    return await makeGitRepo(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A kill test's teardown: its worker processes (by PID), its stack, its repository and its log folder. */
export async function tearDownKillTest(parts: { workers: ChildProcess[]; stack?: TestStack; repo?: GitFixtureRepo; logDir: string }): Promise<void> {
  await stopWorkerProcesses(parts.workers);
  await parts.stack?.stop();
  if (parts.repo) fs.rmSync(parts.repo.dir, { recursive: true, force: true });
  // KEEP_KILL_LOGS=1 keeps the worker processes' logs, to read after a run.
  if (!process.env.KEEP_KILL_LOGS) fs.rmSync(parts.logDir, { recursive: true, force: true });
}

/**
 * The dispatcher's `realiseBatch` activities that ended on a later attempt than their first, each with
 * the failure of the attempt before (the history's ActivityTaskStarted event of a retried activity carries
 * both), once every batch the dispatcher scheduled has ended.
 */
export async function retriedBatches(stack: TestStack): Promise<Array<{ attempt: number; lastFailure: string }>> {
  return eventually('every batch of the dispatcher to end', async () => {
    const history = await stack.temporal.client.workflow.getHandle(dispatcherWorkflowId(stack.taskQueue)).fetchHistory();
    const events = history.events ?? [];
    const batches = new Set(events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'realiseBatch').map((e) => String(e.eventId)));
    const ended = events.filter((e) => {
      const id = String(e.activityTaskCompletedEventAttributes?.scheduledEventId ?? e.activityTaskFailedEventAttributes?.scheduledEventId ?? e.activityTaskTimedOutEventAttributes?.scheduledEventId ?? e.activityTaskCanceledEventAttributes?.scheduledEventId ?? '');
      return batches.has(id);
    });
    if (ended.length < batches.size) return undefined;
    return events
      .map((e) => e.activityTaskStartedEventAttributes)
      .filter((a): a is temporal.api.history.v1.IActivityTaskStartedEventAttributes => !!a && batches.has(String(a.scheduledEventId)) && (a.attempt ?? 1) > 1)
      .map((a) => ({ attempt: a.attempt ?? 0, lastFailure: a.lastFailure?.message ?? '' }));
  }, 120_000, 250);
}

/**
 * At least one of the dispatcher's batches ran again, and each that did ran twice, its second attempt after
 * a failure matching `failure` (a heartbeat timeout would say "activity Heartbeat timeout"). `why` names it.
 */
export async function assertKilledBatchesRetriedOnce(stack: TestStack, failure: RegExp, why: string): Promise<void> {
  const retried = await retriedBatches(stack);
  assert.ok(retried.length >= 1, 'a batch was running at the kill, and ran again');
  for (const r of retried) {
    assert.equal(r.attempt, 2, 'each killed batch ran again once');
    assert.match(r.lastFailure, failure, `${why} (a heartbeat timeout would say "activity Heartbeat timeout")`);
  }
}

/** What the worker that fails a batch of an ended worker process says (worker/ended-workers.ts). */
export const ENDED_WORKER_FAILURE = /^the worker process that ran realiseBatch \(attempt 1, pid \d+ on .+\) has ended; it runs again$/;
/** The same, for a process judged by its lease (one in another PID namespace, container or machine). */
export const LAPSED_LEASE_FAILURE = /^the worker process that ran realiseBatch \(attempt 1, pid \d+ on .+, whose lease lapsed\) has ended; it runs again$/;
