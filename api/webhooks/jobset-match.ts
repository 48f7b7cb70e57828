import picomatch from 'picomatch';
import type { JobsetRow } from '../queries/jobsets';
import type { ForgeEvent } from './forge-event';

/**
 * Which jobsets of the project a forge event evaluates, and at which git ref and commit. Pure.
 *
 * - Only enabled jobsets (enabled, state not `disabled`) with trigger mode `source_change` follow webhooks;
 *   `interval` jobsets keep to their schedule (as circus does).
 * - A branch follows `branch_pattern` (a glob: `release/*`, `feature/**`) when the jobset has one, else `branch`
 *   exactly, else, with neither, the repository's default branch. A jobset with only a `tag_pattern` follows tags only.
 * - A tag follows `tag_pattern` (a glob: `v*`).
 * - A pull/merge request evaluates, at its head commit, the jobsets that follow its base branch.
 */

export type MatchableJobset = Pick<JobsetRow, 'id' | 'name' | 'enabled' | 'state' | 'trigger_mode' | 'branch' | 'branch_pattern' | 'tag_pattern'>;

export interface JobsetTrigger {
  jobsetId: string;
  jobsetName: string;
  /** The git ref evaluated: the branch name, or `refs/tags/<tag>`, or the request's head ref (`refs/pull/<n>/head`). */
  ref: string;
  commit: string;
  pullRequest: { number: number; head: string; base: string } | null;
}

const globCache = new Map<string, (s: string) => boolean>();
function glob(pattern: string): (s: string) => boolean {
  let matcher = globCache.get(pattern);
  if (!matcher) {
    matcher = picomatch(pattern, { dot: true });
    globCache.set(pattern, matcher);
  }
  return matcher;
}

function followsWebhooks(jobset: MatchableJobset): boolean {
  return jobset.enabled && jobset.state !== 'disabled' && jobset.trigger_mode === 'source_change';
}

export function followsBranch(jobset: MatchableJobset, branch: string, defaultBranch: string | null): boolean {
  if (jobset.branch_pattern) return glob(jobset.branch_pattern)(branch);
  if (jobset.branch) return jobset.branch === branch;
  if (jobset.tag_pattern) return false;
  return defaultBranch !== null && defaultBranch === branch;
}

export function followsTag(jobset: MatchableJobset, tag: string): boolean {
  return jobset.tag_pattern ? glob(jobset.tag_pattern)(tag) : false;
}

export function jobsetsToTrigger(jobsets: MatchableJobset[], event: ForgeEvent): JobsetTrigger[] {
  const candidates = jobsets.filter(followsWebhooks);
  const trigger = (j: MatchableJobset, ref: string, commit: string, pullRequest: JobsetTrigger['pullRequest'] = null): JobsetTrigger => ({
    jobsetId: j.id,
    jobsetName: j.name,
    ref,
    commit,
    pullRequest,
  });
  switch (event.kind) {
    case 'push':
      return candidates.filter((j) => followsBranch(j, event.branch, event.defaultBranch)).map((j) => trigger(j, event.branch, event.commit));
    case 'tag':
      return candidates.filter((j) => followsTag(j, event.tag)).map((j) => trigger(j, `refs/tags/${event.tag}`, event.commit));
    case 'pull_request':
      return candidates
        .filter((j) => followsBranch(j, event.baseRef, event.defaultBranch))
        .map((j) => trigger(j, event.gitRef, event.headSha, { number: event.number, head: event.headRef, base: event.baseRef }));
    case 'ignored':
      return [];
  }
}
