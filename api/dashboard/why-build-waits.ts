/**
 * Why a queued build has not started yet, from facts the read model holds. Pure: the build page
 * gathers the facts, this decides what to tell (and the unit test checks each reason).
 */

export interface WaitingBuild {
  status: string;
  system: string;
  required_features: string[];
  priority: number;
}

export interface CandidateBuilder {
  name: string;
  systems: string[];
  supported_features: string[];
  mandatory_features: string[];
  max_jobs: number;
  enabled: boolean;
  /** Set while the builder backs off after repeated failures. */
  backing_off_until: Date | null;
  /** Builds running on it now. */
  busy: number;
}

export interface WaitFacts {
  build: WaitingBuild;
  /** Dependencies that have not finished yet (the first of them, when there are many). */
  unfinishedDependencies: Array<{ id: string; job_name: string; status: string }>;
  /** How many dependencies have not finished yet, when more than those listed may exist. */
  unfinishedDependencyCount?: number;
  /** Remote builders and connected agents; empty when the worker's own Nix builds. */
  builders: CandidateBuilder[];
  /** The worker's own Nix when no builder is configured: its slots and its running builds. */
  local?: { system: string; slots: number; busy: number };
  /** Queued builds of the same system that go first (higher priority, or as high and older). */
  queuedAhead: number;
}

export type WaitReason =
  | { kind: 'dependencies'; text: string; dependencies: WaitFacts['unfinishedDependencies'] }
  | { kind: 'no_builder'; text: string }
  | { kind: 'backing_off'; text: string }
  | { kind: 'slots_full'; text: string }
  | { kind: 'priority'; text: string }
  | { kind: 'dispatching'; text: string };

function matches(builder: CandidateBuilder, build: WaitingBuild): boolean {
  return (
    builder.systems.includes(build.system) &&
    build.required_features.every((f) => builder.supported_features.includes(f) || builder.mandatory_features.includes(f)) &&
    builder.mandatory_features.every((f) => build.required_features.includes(f))
  );
}

/** The reasons a queued build waits, most fundamental first; empty for a build that does not wait. */
export function whyBuildWaits(facts: WaitFacts, now: Date = new Date()): WaitReason[] {
  const { build } = facts;
  if (build.status !== 'pending') return [];
  const reasons: WaitReason[] = [];
  if (facts.unfinishedDependencies.length > 0) {
    const n = Math.max(facts.unfinishedDependencyCount ?? 0, facts.unfinishedDependencies.length);
    reasons.push({ kind: 'dependencies', text: `It waits for ${n} ${n === 1 ? 'dependency' : 'dependencies'} to finish.`, dependencies: facts.unfinishedDependencies });
  }
  const features = build.required_features.length > 0 ? ` with the features ${build.required_features.join(', ')}` : '';
  let free = 0;
  let capacity = 0;
  if (facts.builders.length === 0 && facts.local) {
    if (facts.local.system !== build.system || build.required_features.length > 0) {
      reasons.push({ kind: 'no_builder', text: `No builder builds ${build.system}${features}: no remote builder is configured and the worker's own Nix builds ${facts.local.system} without extra features.` });
      return reasons;
    }
    capacity = facts.local.slots;
    free = Math.max(0, facts.local.slots - facts.local.busy);
  } else {
    const able = facts.builders.filter((b) => matches(b, build));
    const usable = able.filter((b) => b.enabled && !(b.backing_off_until && b.backing_off_until > now));
    if (able.length === 0 || able.every((b) => !b.enabled)) {
      reasons.push({ kind: 'no_builder', text: `No enabled builder builds ${build.system}${features}.` });
      return reasons;
    }
    if (usable.length === 0) {
      const until = able.map((b) => b.backing_off_until).filter((d): d is Date => d !== null).sort((a, b) => a.getTime() - b.getTime())[0];
      reasons.push({ kind: 'backing_off', text: `Every builder for ${build.system}${features} backs off after failures${until ? ` until ${until.toISOString()}` : ''}.` });
      return reasons;
    }
    capacity = usable.reduce((n, b) => n + b.max_jobs, 0);
    free = usable.reduce((n, b) => n + Math.max(0, b.max_jobs - b.busy), 0);
  }
  if (free === 0) reasons.push({ kind: 'slots_full', text: `All ${capacity} slots of the builders for ${build.system} are in use.` });
  if (facts.queuedAhead > 0) {
    const n = facts.queuedAhead >= 1000 ? 'At least 1000' : String(facts.queuedAhead);
    reasons.push({ kind: 'priority', text: `${n} queued ${facts.queuedAhead === 1 ? 'build goes' : 'builds go'} first (higher priority than ${build.priority}, or as high and older).` });
  }
  if (reasons.length === 0) reasons.push({ kind: 'dispatching', text: 'Nothing holds it back: a builder takes it at the next dispatch.' });
  return reasons;
}
