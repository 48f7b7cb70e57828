import os from 'node:os';
import type { BuildRow, Db } from '../../lib/db';
import { ACTIVE_BUILD_STATUSES } from '../../lib/statuses';
import type { RingmasterConfig } from '../../lib/config';
import { listBuilders, listConnectedBuilderSessions } from '../queries/builders';
import { queuedAheadOf, runningBuildsPerBuilder } from '../queries/build-queue';
import { relatedBuilds } from '../queries/builds';
import type { WaitFacts } from './why-build-waits';

/** The Nix system of this machine, as the worker's own Nix builds it. */
function localSystem(): string {
  const arch = process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch;
  return `${arch}-${process.platform}`;
}

/** The most unfinished dependencies named; the reason counts them all. */
const UNFINISHED_SHOWN = 50;

type Dependencies = Awaited<ReturnType<typeof relatedBuilds>>;

/** The build's unfinished dependencies: picked from `listed` (the page's list of them) when it holds them all, else read. */
async function unfinishedDependencies(db: Db, buildId: string, listed: Promise<Dependencies> | undefined): Promise<Dependencies> {
  const all = await listed;
  if (all && all.rows.length === all.total) {
    const unfinished = all.rows.filter((d) => (ACTIVE_BUILD_STATUSES as readonly string[]).includes(d.status));
    return { rows: unfinished.slice(0, UNFINISHED_SHOWN), total: unfinished.length };
  }
  return relatedBuilds(db, buildId, 'dependencies', { limit: UNFINISHED_SHOWN, statuses: ACTIVE_BUILD_STATUSES });
}

/**
 * Gathers from the read model, in one round of queries, what decides whether a queued build can start. `dependencies`
 * is the build's list of dependencies when the caller reads it anyway (the build page): when it holds all of them,
 * the unfinished ones are picked from it instead of read again.
 */
export async function buildWaitFacts(db: Db, config: RingmasterConfig, build: BuildRow, dependencies?: Promise<Dependencies>): Promise<WaitFacts> {
  const [builders, sessions, busy, queuedAhead, unfinished] = await Promise.all([
    listBuilders(db),
    listConnectedBuilderSessions(db),
    runningBuildsPerBuilder(db),
    queuedAheadOf(db, build),
    unfinishedDependencies(db, build.id, dependencies),
  ]);
  const candidates: WaitFacts['builders'] = [
    ...builders.map((b) => ({
      name: b.name,
      systems: b.systems,
      supported_features: b.supported_features,
      mandatory_features: b.mandatory_features,
      max_jobs: b.max_jobs,
      enabled: b.enabled,
      backing_off_until: b.disabled_until ? new Date(b.disabled_until) : null,
      busy: busy.get(b.id) ?? 0,
    })),
    ...sessions.map((s) => ({
      name: s.name,
      systems: s.systems,
      supported_features: s.supported_features,
      mandatory_features: s.mandatory_features,
      max_jobs: s.max_jobs,
      enabled: true,
      backing_off_until: s.disabled_until ? new Date(s.disabled_until) : null,
      busy: s.current_jobs,
    })),
  ];
  return {
    build: { status: build.status, system: build.system, required_features: build.required_features ?? [], priority: build.priority },
    unfinishedDependencies: unfinished.rows.map((d) => ({ id: d.id, job_name: d.job_name, status: d.status })),
    unfinishedDependencyCount: unfinished.total,
    builders: candidates,
    local: candidates.length === 0 ? { system: localSystem(), slots: config.localMaxJobs ?? os.cpus().length, busy: busy.get(null) ?? 0 } : undefined,
    queuedAhead,
  };
}
