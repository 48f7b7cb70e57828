// Where a bench run's time went: per workflow type, what the histories hold (workflow tasks, events,
// local activities by name, activities, signals, timers, time spent inside workflow tasks); the CPU
// each process used (from /proc); and how busy the builder's slots were (from the step rows).
import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import type { Db } from '../lib/db';
import { eventTypeName } from './history-limits';
import { procStat } from '../lib/processes';
import type { BenchStack } from './support';

const CLOCK_TICKS = 100;

/**
 * CPU seconds (user + system) of a process, with its reaped children and its live descendants, leaving
 * out the subtrees of `exclude` (e.g. servers it started, counted on their own).
 */
export function cpuSecondsOfTree(pid: number, exclude: number[] = []): number {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(entry));
    children.set(stat.ppid, list);
  }
  let total = 0;
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    if (exclude.includes(p)) continue;
    const stat = readStat(p);
    if (!stat) continue;
    total += stat.ticks;
    stack.push(...(children.get(p) ?? []));
  }
  return total / CLOCK_TICKS;
}

/** CPU seconds so far of this process (and what it spawned: Nix, git), the bench stack's Temporal dev server and its PostgreSQL. */
export function cpuOfBenchStack(bench: BenchStack): { self: number; temporal: number; postgres: number } {
  const postmaster = Number(fs.readFileSync(path.join(bench.services.dir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const temporal = bench.services.temporal?.child.pid ?? -1;
  return { self: cpuSecondsOfTree(process.pid, [temporal, postmaster]), temporal: cpuSecondsOfTree(temporal), postgres: cpuSecondsOfTree(postmaster) };
}

/**
 * Waits until the stack is idle: this process (worker and API, with what it spawned), Temporal and
 * PostgreSQL together use under a tenth of one core over half a second, for at most `maxMs`. A round's
 * leftovers (workflows closing, outputs served after the last build was recorded) then end before the
 * next round's baseline runs beside them, and before its trigger. Answers the seconds waited.
 */
export async function waitForQuietStack(bench: BenchStack, maxMs = 60_000): Promise<number> {
  const t0 = Date.now();
  const total = () => {
    const c = cpuOfBenchStack(bench);
    return c.self + c.temporal + c.postgres;
  };
  let before = total();
  while (Date.now() - t0 < maxMs) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const now = total();
    if (now - before < 0.05) break;
    before = now;
  }
  return (Date.now() - t0) / 1000;
}

function readStat(pid: number): { ppid: number; ticks: number } | undefined {
  const stat = procStat(pid);
  if (!stat) return undefined;
  // ppid(4), utime(14) stime(15) cutime(16) cstime(17).
  const at = (n: number) => Number(stat(n));
  return { ppid: at(4), ticks: at(14) + at(15) + at(16) + at(17) };
}

export interface WorkflowTypeProfile {
  type: string;
  runs: number;
  workflowTasks: number;
  events: number;
  /** Milliseconds from each workflow task's start to its completion, summed. */
  taskMs: number;
  localActivities: Map<string, number>;
  activities: Map<string, number>;
  signalsReceived: number;
  signalsSent: number;
  timers: number;
  /** Per activity type, [scheduled, completed] in milliseconds since the epoch. */
  activitySpans: Map<string, Array<[number, number]>>;
  /** Each realiseBatch: when it was scheduled and closed, its slots (`--max-jobs`) and members. */
  /** When runs of this type started, and (dispatcher) when slot requests arrived. */
  starts: number[];
  requests: number[];
  batches: Array<{ at: number; end: number; slots: number; members: number }>;
}

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

function eventMs(e: HistoryEvent): number {
  const t = e.eventTime;
  if (!t) return 0;
  return Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

/** The name of a local activity its marker records (the SDK's marker details carry it as JSON), or the marker's name. */
function localActivityName(e: HistoryEvent): string {
  const marker = e.markerRecordedEventAttributes?.markerName ?? '';
  if (marker === 'core_patch') return 'patched() marker';
  const details = e.markerRecordedEventAttributes?.details ?? {};
  for (const payloads of Object.values(details)) {
    for (const p of payloads.payloads ?? []) {
      const text = Buffer.from(p.data ?? []).toString('utf8');
      const match = text.match(/"activity_?[tT]ype"\s*:\s*"([^"]+)"/);
      if (match) return match[1];
    }
  }
  return marker || 'marker';
}

/** Reads every workflow run's history in the namespace and sums it up by workflow type. */
export async function profileWorkflows(client: Client): Promise<WorkflowTypeProfile[]> {
  const byType = new Map<string, WorkflowTypeProfile>();
  const runs: Array<{ type: string; workflowId: string; runId: string }> = [];
  for await (const info of client.workflow.list()) runs.push({ type: info.type, workflowId: info.workflowId, runId: info.runId });
  for (let i = 0; i < runs.length; i += 16) {
    await Promise.all(runs.slice(i, i + 16).map(async (run) => {
      const history = await client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
      let p = byType.get(run.type);
      if (!p) {
        p = { type: run.type, runs: 0, workflowTasks: 0, events: 0, taskMs: 0, localActivities: new Map(), activities: new Map(), signalsReceived: 0, signalsSent: 0, timers: 0, activitySpans: new Map(), batches: [], starts: [], requests: [] };
        byType.set(run.type, p);
      }
      p.runs++;
      let taskStarted = 0;
      const scheduled = new Map<number, { name: string; at: number; batch?: { slots: number; members: number } }>();
      for (const e of history.events ?? []) {
        p.events++;
        switch (eventTypeName(e)) {
          case 'WORKFLOW_TASK_STARTED':
            taskStarted = eventMs(e);
            break;
          case 'WORKFLOW_TASK_COMPLETED':
            p.workflowTasks++;
            p.taskMs += eventMs(e) - taskStarted;
            break;
          case 'MARKER_RECORDED': {
            const name = localActivityName(e);
            p.localActivities.set(name, (p.localActivities.get(name) ?? 0) + 1);
            break;
          }
          case 'ACTIVITY_TASK_SCHEDULED': {
            const name = e.activityTaskScheduledEventAttributes?.activityType?.name ?? 'activity';
            p.activities.set(name, (p.activities.get(name) ?? 0) + 1);
            let batch: { slots: number; members: number } | undefined;
            if (name === 'realiseBatch') {
              try {
                const arg = JSON.parse(Buffer.from(e.activityTaskScheduledEventAttributes?.input?.payloads?.[0]?.data ?? []).toString('utf8'));
                batch = { slots: arg.slots, members: arg.members?.length ?? 0 };
              } catch {
                /* not JSON: no detail */
              }
            }
            scheduled.set(Number(e.eventId), { name, at: eventMs(e), batch });
            break;
          }
          case 'ACTIVITY_TASK_COMPLETED':
          case 'ACTIVITY_TASK_FAILED':
          case 'ACTIVITY_TASK_CANCELED':
          case 'ACTIVITY_TASK_TIMED_OUT': {
            const attrs = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskCanceledEventAttributes ?? e.activityTaskTimedOutEventAttributes;
            const from = scheduled.get(Number(attrs?.scheduledEventId));
            if (from) {
              const spans = p.activitySpans.get(from.name) ?? [];
              spans.push([from.at, eventMs(e)]);
              p.activitySpans.set(from.name, spans);
              if (from.batch) p.batches.push({ at: from.at, end: eventMs(e), ...from.batch });
            }
            break;
          }
          case 'WORKFLOW_EXECUTION_SIGNALED':
            p.signalsReceived++;
            if (e.workflowExecutionSignaledEventAttributes?.signalName === 'requestSlot') {
              const text = Buffer.from(e.workflowExecutionSignaledEventAttributes.input?.payloads?.[0]?.data ?? []).toString('utf8');
              if (!text.includes('"reprioritizeOnly":true')) p.requests.push(eventMs(e));
            }
            break;
          case 'WORKFLOW_EXECUTION_STARTED':
            p.starts.push(eventMs(e));
            break;
          case 'SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED':
            p.signalsSent++;
            break;
          case 'TIMER_STARTED':
            p.timers++;
            break;
        }
      }
    }));
  }
  return [...byType.values()].sort((a, b) => b.workflowTasks - a.workflowTasks);
}

export function printWorkflowProfile(profiles: WorkflowTypeProfile[]): void {
  const names = (m: Map<string, number>) => [...m.entries()].map(([k, v]) => `${k} ${v}`).join(', ') || '—';
  let tasks = 0;
  for (const p of profiles) {
    tasks += p.workflowTasks;
    console.log(
      `  ${p.type}: ${p.runs} runs, ${p.workflowTasks} workflow tasks (${(p.workflowTasks / p.runs).toFixed(1)}/run, ${(p.taskMs / 1000).toFixed(1)} s inside them), ` +
        `${p.events} events (${(p.events / p.runs).toFixed(1)}/run), signals in ${p.signalsReceived} / out ${p.signalsSent}, timers ${p.timers}`,
    );
    console.log(`      local activities: ${names(p.localActivities)}; activities: ${names(p.activities)}`);
    for (const [name, spans] of p.activitySpans) {
      const total = spans.reduce((sum, [a, b]) => sum + (b - a), 0);
      console.log(`      ${name}: ${spans.length}, ${(total / spans.length / 1000).toFixed(2)} s each scheduled → closed; some running during ${(coveredMs(spans) / 1000).toFixed(1)} s of ${((Math.max(...spans.map((x) => x[1])) - Math.min(...spans.map((x) => x[0]))) / 1000).toFixed(1)} s`);
    }
  }
  for (const p of profiles) {
    if (p.batches.length === 0) continue;
    const t0 = Math.min(...p.batches.map((b) => b.at));
    const line = [...p.batches].sort((a, b) => a.at - b.at).map((b) => `+${((b.at - t0) / 1000).toFixed(1)}s ${b.members}m/${b.slots}s ${((b.end - b.at) / 1000).toFixed(1)}s`);
    console.log(`      batches (start, members/slots, duration): ${line.join('; ')}`);
    const perHalfSecond = (times: number[]) => {
      const counts: number[] = [];
      for (const t of times) {
        const i = Math.floor((t - t0) / 500);
        if (i < 0) continue;
        while (counts.length <= i) counts.push(0);
        counts[i]++;
      }
      return counts.join(' ');
    };
    const before = (times: number[]) => `${times.filter((t) => t < t0).length}, the first ${((Math.min(...times) - t0) / 1000).toFixed(1)} s`;
    for (const q of profiles) {
      if (q.type === 'BuildWorkflow' || q.type === 'DerivationWorkflow') console.log(`      ${q.type} starts per 0.5 s from the first batch (${before(q.starts)} before it): ${perHalfSecond(q.starts)}`);
    }
    console.log(`      slot requests per 0.5 s from the first batch (${before(p.requests)} before it): ${perHalfSecond(p.requests)}`);
  }
  console.log(`  workflow tasks in all: ${tasks}`);
}

/** Milliseconds covered by the union of the spans. */
function coveredMs(spans: Array<[number, number]>): number {
  let covered = 0;
  let end = -Infinity;
  for (const [a, b] of [...spans].sort((x, y) => x[0] - y[0])) {
    if (b <= end) continue;
    covered += b - Math.max(a, end);
    end = b;
  }
  return covered;
}

/**
 * How the derivations' realisations spread over the run (one row per derivation, from its first step
 * row): seconds from `since` to the first start and to the last end, and the mean number building at
 * once between those two, against `slots`.
 */
export async function slotUse(db: Db, since: Date, slots: number): Promise<string> {
  const rows: Array<{ started: Date; completed: Date }> = await db('build_steps')
    .where('started_at', '>=', since)
    .whereNotNull('completed_at')
    .groupBy('drv_path')
    .select(db.raw('min(started_at) as started'), db.raw('max(completed_at) as completed'));
  if (rows.length === 0) return 'no step started';
  const first = Math.min(...rows.map((r) => r.started.getTime()));
  const last = Math.max(...rows.map((r) => r.completed.getTime()));
  const busy = rows.reduce((sum, r) => sum + (r.completed.getTime() - r.started.getTime()), 0);
  const span = Math.max(1, last - first);
  // Building at once per half second of the span, to show where slots sat idle.
  const bucketMs = 500;
  const buckets = new Array<number>(Math.ceil(span / bucketMs)).fill(0);
  for (const r of rows) {
    const [a, b] = [r.started.getTime() - first, r.completed.getTime() - first];
    for (let i = Math.floor(a / bucketMs); i < buckets.length && i * bucketMs < b; i++) {
      buckets[i] += (Math.min(b, (i + 1) * bucketMs) - Math.max(a, i * bucketMs)) / bucketMs;
    }
  }
  const timeline = buckets.map((x) => x.toFixed(1)).join(' ');
  return `${rows.length} derivations realised; first started ${((first - since.getTime()) / 1000).toFixed(1)} s after the trigger, last ended ${((last - since.getTime()) / 1000).toFixed(1)} s; ` +
    `on average ${(busy / span).toFixed(2)} building at once over that span (${slots} slots: ${((100 * busy) / span / slots).toFixed(0)} % busy)\n  building at once per 0.5 s from the first start: ${timeline}`;
}
