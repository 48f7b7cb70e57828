/**
 * The dispatcher's pure scheduling rules (no Temporal, no I/O), unit-tested on their own:
 * - a builder matches a step when it supports the system, required ⊆ supported ∪ mandatory, and
 *   its mandatory features ⊆ required;
 * - a builder's max_jobs is never exceeded;
 * - runnable steps go by priority, then the jobset with the smaller share used, then age;
 * - among free matching builders the fastest (speed factor) with the lowest load wins.
 */

import type { SlotRequest } from './shared';

export interface DispatchBuilder {
  id: string;
  systems: string[];
  supportedFeatures: string[];
  mandatoryFeatures: string[];
  maxJobs: number;
  speedFactor: number;
  enabled: boolean;
  /** Epoch ms until which the builder is backed off after failures, or null. */
  disabledUntil: number | null;
  consecutiveFailures: number;
}

/** A slot request in the dispatcher's queue, numbered in order of arrival. */
export type QueuedRequest = SlotRequest & { seq: number };

export interface Assignment {
  requestId: string;
  builderId: string;
}

export function builderMatches(b: DispatchBuilder, system: string, required: string[]): boolean {
  if (!b.enabled) return false;
  if (!b.systems.includes(system)) return false;
  const supported = new Set([...b.supportedFeatures, ...b.mandatoryFeatures]);
  if (!required.every((f) => supported.has(f))) return false;
  return b.mandatoryFeatures.every((f) => required.includes(f));
}

export function isAvailable(b: DispatchBuilder, now: number): boolean {
  return b.disabledUntil === null || b.disabledUntil <= now;
}

/** Orders requests: higher priority first, then the jobset that used less of its share, then the oldest. */
export function compareRequests(a: QueuedRequest, b: QueuedRequest, usage: Record<string, number>): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  const ua = (usage[a.jobsetId] ?? 0) / Math.max(1, a.shares);
  const ub = (usage[b.jobsetId] ?? 0) / Math.max(1, b.shares);
  if (ua !== ub) return ua - ub;
  return a.seq - b.seq;
}

/** Requests that no enabled builder could ever run (whatever the load): these end as unsupported_system. */
export function unsupportedRequests(builders: DispatchBuilder[], queue: QueuedRequest[]): QueuedRequest[] {
  return queue.filter((r) => !builders.some((b) => builderMatches(b, r.system, r.requiredFeatures)));
}

/**
 * Assigns queued requests to free slots. `running` maps builder id → number of steps it runs now.
 * Returns the assignments in order; callers apply them (add to running, remove from queue).
 */
export function assignSlots(
  builders: DispatchBuilder[],
  queue: QueuedRequest[],
  running: Record<string, number>,
  usage: Record<string, number>,
  now: number,
): Assignment[] {
  const load: Record<string, number> = { ...running };
  const localUsage: Record<string, number> = { ...usage };
  const ordered = [...queue].sort((a, b) => compareRequests(a, b, localUsage));
  const out: Assignment[] = [];
  for (const request of ordered) {
    const candidates = builders.filter(
      (b) => builderMatches(b, request.system, request.requiredFeatures) && isAvailable(b, now) && (load[b.id] ?? 0) < b.maxJobs,
    );
    if (candidates.length === 0) continue;
    const avoid = new Set(request.avoidBuilders ?? []);
    candidates.sort((x, y) => {
      const ax = avoid.has(x.id) ? 1 : 0;
      const ay = avoid.has(y.id) ? 1 : 0;
      if (ax !== ay) return ax - ay;
      if (x.speedFactor !== y.speedFactor) return y.speedFactor - x.speedFactor;
      const lx = (load[x.id] ?? 0) / x.maxJobs;
      const ly = (load[y.id] ?? 0) / y.maxJobs;
      if (lx !== ly) return lx - ly;
      return x.id < y.id ? -1 : x.id > y.id ? 1 : 0;
    });
    const chosen = candidates[0];
    load[chosen.id] = (load[chosen.id] ?? 0) + 1;
    localUsage[request.jobsetId] = (localUsage[request.jobsetId] ?? 0) + 1;
    out.push({ requestId: request.requestId, builderId: chosen.id });
  }
  return out;
}

/** Back-off after consecutive failures: 10 s, doubling, at most one hour. */
export function backoffMs(consecutiveFailures: number): number {
  if (consecutiveFailures < 1) return 0;
  return Math.min(3600_000, 10_000 * 2 ** (consecutiveFailures - 1));
}

/**
 * The builders that take batches, in the order they get them: the fastest first (speed factor), then
 * the least loaded, then by id. Without `remote` only the worker's own Nix (`localId`) does.
 */
export function batchBuilderOrder(builders: DispatchBuilder[], running: Record<string, number>, remote: boolean, localId: string): DispatchBuilder[] {
  const load = (b: DispatchBuilder) => (running[b.id] ?? 0) / Math.max(1, b.maxJobs);
  return builders
    .filter((b) => remote || b.id === localId)
    .sort((x, y) => y.speedFactor - x.speedFactor || load(x) - load(y) || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
}

/** The most derivations one batch's nix-store is given (its command line stays well under the limits). */
export const MAX_BATCH_MEMBERS = 200;

export interface BatchPlan {
  builderId: string;
  /** Slots the batch holds: its nix-store's `--max-jobs`. */
  slots: number;
  /** Queued requests it realises, in queue order (priority, share, age). */
  requestIds: string[];
}

/**
 * A batch for one builder (issue 6): the queued batchable requests it can build, in queue order, with
 * the priority of the first one (Nix orders a batch by dependencies only, so a bumped step goes in a
 * batch of its own, ahead of the rest) and the same time limits (Nix applies `--timeout` and
 * `--max-silent-time` to every derivation of a process), at most `maxMembers`; it holds the builder's
 * free slots, at most one per member and per input a member queued ahead of (`pendingInputs`). Undefined when the builder has no free slot or no such request waits.
 */
export function formBatch(
  builder: DispatchBuilder,
  queue: QueuedRequest[],
  running: Record<string, number>,
  usage: Record<string, number>,
  now: number,
  { maxMembers = MAX_BATCH_MEMBERS }: { maxMembers?: number } = {},
): BatchPlan | undefined {
  const free = builder.maxJobs - (running[builder.id] ?? 0);
  if (free <= 0 || !isAvailable(builder, now)) return undefined;
  const candidates = queue
    .filter((r) => r.batch !== undefined && builderMatches(builder, r.system, r.requiredFeatures))
    .sort((a, b) => compareRequests(a, b, usage));
  if (candidates.length === 0) return undefined;
  const first = candidates[0];
  const members = candidates
    .filter((r) => r.priority === first.priority && r.batch!.timeoutSeconds === first.batch!.timeoutSeconds && r.batch!.maxSilentSeconds === first.batch!.maxSilentSeconds)
    .slice(0, maxMembers);
  // A member that queued ahead of its inputs brings them along: a slot for each, as far as the free ones go
  // (the batch gives back at once what its Nix says it will not use).
  const derivations = members.reduce((n, r) => n + 1 + aheadOf(r).length, 0);
  return { builderId: builder.id, slots: Math.min(free, derivations), requestIds: members.map((r) => r.requestId) };
}

/**
 * The queued requests `builder` may take in its batches this round when builders after it (`later`, in
 * `batchBuilderOrder`) have free slots for some of them too (issue 6: several SSH builders): the members
 * whose inputs are built (nothing to bring along) are split among them in proportion to free slots
 * times speed factor, this builder getting the first of them in queue order, and at least one per free
 * slot; the members queued ahead of their inputs (`pendingInputs`) all stay with it, and so do those
 * inputs' own requests, so the inputs they share are built once, by one Nix. Undefined: no later builder can take any of them, so it takes all.
 */
export function batchShare(
  builder: DispatchBuilder,
  later: DispatchBuilder[],
  queue: QueuedRequest[],
  running: Record<string, number>,
  usage: Record<string, number>,
  now: number,
): Set<string> | undefined {
  const freeOf = (b: DispatchBuilder) => (isAvailable(b, now) ? Math.max(0, b.maxJobs - (running[b.id] ?? 0)) : 0);
  const free = freeOf(builder);
  if (free === 0) return undefined;
  const mine = queue.filter((r) => r.batch !== undefined && builderMatches(builder, r.system, r.requiredFeatures));
  // Members queued ahead of their inputs, and those inputs' own requests, stay together.
  const together = new Set(mine.flatMap((r) => aheadOf(r)));
  const staysHere = (r: QueuedRequest) => aheadOf(r).length > 0 || together.has(r.batch!.drvPath);
  const independent = mine.filter((r) => !staysHere(r)).sort((a, b) => compareRequests(a, b, usage));
  const weight = (b: DispatchBuilder) => freeOf(b) * Math.max(b.speedFactor, 0.01);
  const othersWeight = later
    .filter((b) => freeOf(b) > 0 && independent.some((r) => builderMatches(b, r.system, r.requiredFeatures)))
    .reduce((sum, b) => sum + weight(b), 0);
  if (othersWeight === 0) return undefined;
  const share = Math.max(free, Math.ceil((independent.length * weight(builder)) / (weight(builder) + othersWeight)));
  return new Set([...mine.filter(staysHere), ...independent.slice(0, share)].map((r) => r.requestId));
}

/** The unbuilt inputs a batchable request queued ahead of (their .drv paths). */
export function aheadOf(r: QueuedRequest): string[] {
  return r.batch?.pendingInputs ?? [];
}



/**
 * Queued requests that no batch on `builderId` may take now: derivations that a running batch on another
 * builder builds along, as inputs its members queued ahead of (`running`: each batch's builder and those .drv paths).
 * Their own requests wait until that batch ends; built there, they leave the queue.
 */
export function builtAlongElsewhere(builderId: string, queue: QueuedRequest[], running: Array<{ builderId: string; inputs: string[] }>): Set<string> {
  const elsewhere = new Set(running.filter((b) => b.builderId !== builderId).flatMap((b) => b.inputs));
  return new Set(queue.filter((q) => q.batch !== undefined && elsewhere.has(q.batch.drvPath)).map((q) => q.requestId));
}
