import crypto from 'node:crypto';
import {
  DEFAULT_API_URLS,
  isForgeStatus,
  type ForgeStatusType,
  type NotificationEventKind,
  type NotificationTarget,
  type NotificationType,
} from './targets';

/**
 * What a notification says, independent of where it goes (pure: no I/O). A task's payload holds it
 * without any credential; the delivery builds the request from it and the target's live settings.
 */

/** Something that happened, with what every target kind needs to describe it. */
export interface NotificationEvent {
  kind: NotificationEventKind;
  project: string;
  jobset: string;
  /** null for evaluation events */
  job: string | null;
  evaluationId: string;
  buildId: string | null;
  commit: string | null;
  /** The build's or the evaluation's status when the event happened. */
  status: string;
  system: string | null;
  errorMessage: string | null;
  repositoryUrl: string;
}

/** The forge-independent state: pending is the only one that a newer status may overwrite. */
export type NotificationState = 'pending' | 'success' | 'failure' | 'error';

export interface NotificationPayload {
  target: { name: string; type: NotificationType };
  event: NotificationEventKind;
  project: string;
  jobset: string;
  job: string | null;
  evaluation_id: string;
  build_id: string | null;
  commit: string | null;
  status: string;
  state: NotificationState;
  context: string;
  description: string;
  target_url: string | null;
  /** Commit statuses: "owner/repo" (GitLab: the project's path or id). */
  repository?: string;
  /** Email: the recipients. */
  to?: string[];
}

export interface PlannedNotification {
  payload: NotificationPayload;
  orderKey: string;
  state: NotificationState;
}

export const FINAL_STATES: readonly NotificationState[] = ['success', 'failure', 'error'];

export function stateOf(kind: NotificationEventKind, status: string): NotificationState {
  if (kind === 'evaluation_started' || kind === 'build_started') return 'pending';
  if (status === 'succeeded' || status === 'completed') return 'success';
  if (status === 'cancelled' || status === 'aborted') return 'error';
  return 'failure';
}

/** `ringmaster/<jobset>/<job>` for builds, `ringmaster/<jobset>` for the evaluation itself. */
export function statusContext(event: Pick<NotificationEvent, 'jobset' | 'job'>): string {
  return event.job === null ? `ringmaster/${event.jobset}` : `ringmaster/${event.jobset}/${event.job}`;
}

export function describeEvent(event: NotificationEvent): string {
  const what = event.job === null ? `evaluation of ${event.project}/${event.jobset}` : `${event.project}/${event.jobset}/${event.job}`;
  switch (event.kind) {
    case 'evaluation_started':
      return `Ringmaster is evaluating ${event.project}/${event.jobset}`;
    case 'build_started':
      return `Ringmaster is building ${what}`;
    default:
      return event.status === 'succeeded' || event.status === 'completed' ? `${what}: ${event.status}` : `${what}: ${event.status}${event.errorMessage ? ` (${event.errorMessage.split('\n')[0]})` : ''}`;
  }
}

/** The page a status links to: the build (or evaluation) on the public URL; null without one. */
export function targetUrlOf(event: NotificationEvent, publicUrl: string | undefined): string | null {
  if (!publicUrl) return null;
  const base = publicUrl.replace(/\/+$/, '');
  return event.buildId ? `${base}/api/v1/builds/${event.buildId}` : `${base}/api/v1/evaluations/${event.evaluationId}`;
}

/**
 * "owner/repo" from a repository URL (https://host/owner/repo.git, ssh://git@host/owner/repo,
 * git@host:owner/repo.git); GitLab groups keep their full path. undefined for local paths.
 */
export function forgeRepositoryOf(repositoryUrl: string): string | undefined {
  const scp = /^[\w.-]+@[\w.-]+:(?!\/)(.+)$/.exec(repositoryUrl);
  let pathPart: string | undefined = scp?.[1];
  if (!pathPart) {
    try {
      const url = new URL(repositoryUrl.replace(/^git\+/, ''));
      if (!['https:', 'http:', 'ssh:', 'git:'].includes(url.protocol)) return undefined;
      pathPart = url.pathname;
    } catch {
      return undefined;
    }
  }
  const segments = pathPart.replace(/\.git\/?$/, '').split('/').filter(Boolean);
  return segments.length >= 2 ? segments.join('/') : undefined;
}

/** Short stable hash of an ordering key, for the workflow ID. */
export function orderKeyHash(orderKey: string): string {
  return crypto.createHash('sha256').update(orderKey).digest('hex').slice(0, 32);
}

/**
 * The notification a target gets for an event, or undefined when it cannot get one (a commit
 * status without a commit or a repository).
 */
export function planNotification(target: NotificationTarget, event: NotificationEvent, publicUrl: string | undefined): PlannedNotification | undefined {
  const state = stateOf(event.kind, event.status);
  const context = statusContext(event);
  const payload: NotificationPayload = {
    target: { name: target.name, type: target.type },
    event: event.kind,
    project: event.project,
    jobset: event.jobset,
    job: event.job,
    evaluation_id: event.evaluationId,
    build_id: event.buildId,
    commit: event.commit,
    status: event.status,
    state,
    context,
    description: describeEvent(event).slice(0, 140),
    target_url: targetUrlOf(event, publicUrl),
  };
  if (isForgeStatus(target)) {
    const repository = target.repositories?.[event.project] ?? forgeRepositoryOf(event.repositoryUrl);
    if (!event.commit || !repository) return undefined;
    payload.repository = repository;
  }
  if (target.type === 'email') payload.to = target.to;
  return { payload, state, orderKey: [target.name, event.commit ?? event.evaluationId, context].join('\n') };
}

export interface HttpDelivery {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export const SIGNATURE_HEADER = 'X-Ringmaster-Signature-256';

/** `sha256=<hex HMAC-SHA256(body)>`, as GitHub signs its webhooks. */
export function signatureOf(secret: string, body: string): string {
  return `sha256=${crypto.createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** The generic webhook's JSON body. */
export function webhookBody(taskId: string, p: NotificationPayload, occurredAt: string): Record<string, unknown> {
  return {
    delivery: taskId,
    event: p.event,
    occurred_at: occurredAt,
    project: p.project,
    jobset: p.jobset,
    job: p.job,
    evaluation_id: p.evaluation_id,
    build_id: p.build_id,
    commit: p.commit,
    status: p.status,
    state: p.state,
    context: p.context,
    description: p.description,
    target_url: p.target_url,
  };
}

const GITLAB_STATES: Record<NotificationState, string> = { pending: 'running', success: 'success', failure: 'failed', error: 'canceled' };

function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}${path}`;
}

/** The commit-status request for GitHub, Gitea/Forgejo or GitLab. */
export function forgeStatusRequest(type: ForgeStatusType, apiUrl: string | undefined, token: string | undefined, p: NotificationPayload): HttpDelivery {
  const api = apiUrl ?? DEFAULT_API_URLS[type];
  if (!api) throw new Error(`the ${type} target needs api_url`);
  const sha = encodeURIComponent(p.commit ?? '');
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'ringmaster' };
  const common = { target_url: p.target_url ?? undefined, description: p.description };
  if (type === 'gitlab_status') {
    if (token) headers['private-token'] = token;
    return { url: joinUrl(api, `/projects/${encodeURIComponent(p.repository ?? '')}/statuses/${sha}`), headers, body: JSON.stringify({ state: GITLAB_STATES[p.state], name: p.context, ...common }) };
  }
  const [owner, ...rest] = (p.repository ?? '').split('/');
  const repoPath = `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(rest.join('/'))}/statuses/${sha}`;
  if (type === 'github_status') {
    headers.accept = 'application/vnd.github+json';
    headers['x-github-api-version'] = '2022-11-28';
    if (token) headers.authorization = `Bearer ${token}`;
  } else if (token) {
    headers.authorization = `token ${token}`;
  }
  return { url: joinUrl(api, repoPath), headers, body: JSON.stringify({ state: p.state, context: p.context, ...common }) };
}

export function slackBody(p: NotificationPayload): Record<string, unknown> {
  const icon = p.state === 'success' ? ':white_check_mark:' : p.state === 'pending' ? ':hourglass_flowing_sand:' : ':x:';
  const link = p.target_url ? ` <${p.target_url}|details>` : '';
  return { text: `${icon} ${p.description}${p.commit ? ` (${p.commit.slice(0, 12)})` : ''}${link}` };
}

export function emailMessage(p: NotificationPayload): { subject: string; text: string } {
  const name = p.job === null ? `${p.project}/${p.jobset}` : `${p.project}/${p.jobset}/${p.job}`;
  const lines = [
    p.description,
    '',
    `Project:    ${p.project}`,
    `Jobset:     ${p.jobset}`,
    ...(p.job ? [`Job:        ${p.job}`] : []),
    `Status:     ${p.status}`,
    ...(p.commit ? [`Commit:     ${p.commit}`] : []),
    `Evaluation: ${p.evaluation_id}`,
    ...(p.build_id ? [`Build:      ${p.build_id}`] : []),
    ...(p.target_url ? ['', p.target_url] : []),
  ];
  return { subject: `[ringmaster] ${name}: ${p.status}`, text: `${lines.join('\n')}\n` };
}
