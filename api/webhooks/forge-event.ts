/**
 * What a forge delivery means to Ringmaster, read from its event header and JSON payload: a push to a
 * branch, a pushed tag, a pull/merge request to evaluate, or something of no interest (with the reason).
 * Pure: no I/O, unit-tested with the forges' documented payloads.
 */

export const FORGE_TYPES = ['github', 'gitlab', 'gitea', 'forgejo'] as const;
export type ForgeType = (typeof FORGE_TYPES)[number];

export type ForgeEvent =
  | { kind: 'push'; branch: string; commit: string; defaultBranch: string | null }
  | { kind: 'tag'; tag: string; commit: string }
  | {
      kind: 'pull_request';
      number: number;
      action: string;
      headSha: string;
      headRef: string;
      baseRef: string;
      defaultBranch: string | null;
      /** Where the forge publishes the request's head in the base repository (fork requests too). */
      gitRef: string;
    }
  | { kind: 'ignored'; reason: string };

const ZERO_SHA = /^0+$/;
const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/** The pull-request actions that ask for an evaluation (GitHub names; Gitea/Forgejo say `synchronized`). */
const PULL_REQUEST_ACTIONS = new Set(['opened', 'synchronize', 'synchronized', 'reopened', 'ready_for_review']);

type Json = Record<string, unknown>;

const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

const ignored = (reason: string): ForgeEvent => ({ kind: 'ignored', reason });

/** A push of `ref` to `after` (GitHub, Gitea, Forgejo and GitLab share these fields). */
function pushEvent(payload: Json, commitField: unknown, defaultBranch: string | null): ForgeEvent {
  const ref = str(payload.ref);
  if (!ref) return ignored('push without a ref');
  const after = str(payload.after);
  if (payload.deleted === true || (after !== null && ZERO_SHA.test(after))) return ignored(`${ref} was deleted`);
  const commit = str(commitField) ?? after;
  if (!commit || !SHA.test(commit)) return ignored(`push of ${ref} without a commit`);
  if (ref.startsWith('refs/heads/')) return { kind: 'push', branch: ref.slice('refs/heads/'.length), commit, defaultBranch };
  if (ref.startsWith('refs/tags/')) return { kind: 'tag', tag: ref.slice('refs/tags/'.length), commit };
  return ignored(`push of ${ref}, neither a branch nor a tag`);
}

/** Gitea's and Forgejo's default work-in-progress title prefixes (`WORK_IN_PROGRESS_PREFIXES`), their drafts before `draft` existed. */
const WIP_TITLE = /^\s*(WIP:|\[WIP\])/i;

/** GitHub (`X-GitHub-Event`), and Gitea/Forgejo, whose payloads follow GitHub's. */
function githubLikeEvent(forge: 'github' | 'gitea' | 'forgejo', event: string, payload: Json): ForgeEvent {
  const repository = obj(payload.repository);
  const defaultBranch = str(repository.default_branch);
  if (event === 'push') return pushEvent(payload, null, defaultBranch);
  // Gitea names a pull request's new commits `pull_request_sync` in X-Gitea-Event-Type, `pull_request` in X-Gitea-Event.
  if (event === 'pull_request' || event === 'pull_request_sync') {
    const action = str(payload.action) ?? '';
    if (!PULL_REQUEST_ACTIONS.has(action)) return ignored(`pull request ${action || 'event'} needs no evaluation`);
    const pr = obj(payload.pull_request);
    if (pr.draft === true || (forge !== 'github' && WIP_TITLE.test(str(pr.title) ?? ''))) return ignored('draft pull request');
    if (pr.state !== undefined && pr.state !== 'open') return ignored(`pull request is ${String(pr.state)}`);
    const number = typeof pr.number === 'number' ? pr.number : typeof payload.number === 'number' ? payload.number : null;
    const head = obj(pr.head);
    const base = obj(pr.base);
    const headSha = str(head.sha);
    const headRef = str(head.ref);
    const baseRef = str(base.ref);
    if (number === null || !headSha || !SHA.test(headSha) || !headRef || !baseRef) return ignored('pull request without number, head or base');
    return { kind: 'pull_request', number, action, headSha, headRef, baseRef, defaultBranch, gitRef: `refs/pull/${number}/head` };
  }
  return ignored(`${event || 'unnamed'} events trigger nothing`);
}

/** GitLab (`X-Gitlab-Event`: Push Hook, Tag Push Hook, Merge Request Hook). */
function gitlabEvent(event: string, payload: Json): ForgeEvent {
  const project = obj(payload.project);
  const defaultBranch = str(project.default_branch);
  if (event === 'Push Hook' || event === 'Tag Push Hook') return pushEvent(payload, payload.checkout_sha, defaultBranch);
  if (event === 'Merge Request Hook') {
    const mr = obj(payload.object_attributes);
    const action = str(mr.action) ?? '';
    const changes = obj(payload.changes);
    // An update asks for an evaluation when it brought commits (oldrev), or took the request out of draft.
    const leftDraft = 'draft' in changes || 'work_in_progress' in changes;
    if (!['open', 'reopen', 'update'].includes(action)) return ignored(`merge request ${action || 'event'} needs no evaluation`);
    if (action === 'update' && !str(mr.oldrev) && !leftDraft) return ignored('merge request update without new commits');
    if (mr.draft === true || mr.work_in_progress === true) return ignored('draft merge request');
    if (mr.state !== undefined && mr.state !== 'opened') return ignored(`merge request is ${String(mr.state)}`);
    const number = typeof mr.iid === 'number' ? mr.iid : null;
    const headSha = str(obj(mr.last_commit).id);
    const headRef = str(mr.source_branch);
    const baseRef = str(mr.target_branch);
    if (number === null || !headSha || !SHA.test(headSha) || !headRef || !baseRef) return ignored('merge request without iid, last commit or branches');
    return { kind: 'pull_request', number, action, headSha, headRef, baseRef, defaultBranch, gitRef: `refs/merge-requests/${number}/head` };
  }
  return ignored(`${event || 'unnamed'} events trigger nothing`);
}

/** The event header each forge names its events in. */
export const EVENT_HEADERS: Record<ForgeType, string[]> = {
  github: ['x-github-event'],
  gitlab: ['x-gitlab-event'],
  gitea: ['x-gitea-event'],
  forgejo: ['x-forgejo-event', 'x-gitea-event'],
};

/** The header that names a delivery, in order of preference (GitLab: UUID since 15.x, Idempotency-Key since 17.x). */
export const DELIVERY_HEADERS: Record<ForgeType, string[]> = {
  github: ['x-github-delivery'],
  gitlab: ['x-gitlab-event-uuid', 'idempotency-key'],
  gitea: ['x-gitea-delivery'],
  forgejo: ['x-forgejo-delivery', 'x-gitea-delivery'],
};

export function forgeEventOf(forge: ForgeType, event: string, payload: unknown): ForgeEvent {
  const body = obj(payload);
  switch (forge) {
    case 'github':
    case 'gitea':
    case 'forgejo':
      return githubLikeEvent(forge, event, body);
    case 'gitlab':
      return gitlabEvent(event, body);
  }
}
