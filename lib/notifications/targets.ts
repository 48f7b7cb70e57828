/**
 * Notification targets as the server config file declares them (the `notifications` section), and
 * their resolution into a list of named targets. Circus's flat keys still work: `webhook_urls`
 * (generic JSON webhooks, signed with `webhook_secret` when set) and `github_token` / `gitea_token` +
 * `gitea_url` / `gitlab_token` (+ `gitlab_url`) (commit statuses). `targets` adds any number of
 * targets of each kind, with their own credentials, events and projects.
 */

export const NOTIFICATION_EVENTS = ['evaluation_started', 'evaluation_finished', 'build_started', 'build_finished'] as const;
export type NotificationEventKind = (typeof NOTIFICATION_EVENTS)[number];

export const NOTIFICATION_TYPES = ['webhook', 'github_status', 'gitea_status', 'gitlab_status', 'slack', 'email'] as const;
export type NotificationType = (typeof NOTIFICATION_TYPES)[number];
export type ForgeStatusType = 'github_status' | 'gitea_status' | 'gitlab_status';

interface TargetCommon {
  /** Unique among the targets; tasks name their target by it. Default: `<type>-<position>`. */
  name?: string;
  /** Which events reach this target (default: all; email: build_finished only). */
  events?: NotificationEventKind[];
  /** Only these projects (by name); default: every project. */
  projects?: string[];
}

export interface WebhookTargetConfig extends TargetCommon {
  type: 'webhook';
  url: string;
  /** HMAC-SHA256 key: the body is signed in `X-Ringmaster-Signature-256: sha256=<hex>`. */
  secret?: string;
}

export interface ForgeStatusTargetConfig extends TargetCommon {
  type: ForgeStatusType;
  /** e.g. https://api.github.com, https://gitea.example.org/api/v1, https://gitlab.com/api/v4 */
  api_url?: string;
  token?: string;
  /** project name → "owner/repo" (GitLab: the project's path or numeric id); else read from the project's repository_url. */
  repositories?: Record<string, string>;
}

export interface SlackTargetConfig extends TargetCommon {
  type: 'slack';
  /** The incoming-webhook URL (a secret: it is never shown). */
  webhook_url: string;
}

export interface EmailTargetConfig extends TargetCommon {
  type: 'email';
  smtp: { host: string; port?: number; secure?: boolean; username?: string; password?: string; ignore_tls?: boolean };
  from: string;
  to: string[];
}

export type NotificationTargetConfig = WebhookTargetConfig | ForgeStatusTargetConfig | SlackTargetConfig | EmailTargetConfig;

/** The `notifications` section of the config file. */
export interface NotificationsConfigSection {
  max_attempts?: number;
  retry_backoff_seconds?: number;
  webhook_urls?: string[];
  webhook_secret?: string;
  github_token?: string;
  github_url?: string;
  gitlab_token?: string;
  gitlab_url?: string;
  gitea_token?: string;
  gitea_url?: string;
  targets?: NotificationTargetConfig[];
}

const httpUrl = { type: 'string', pattern: '^https?://', maxLength: 2048 };
const text = { type: 'string', minLength: 1, maxLength: 4096 };
const common = {
  name: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_][A-Za-z0-9._-]*$' },
  events: { type: 'array', uniqueItems: true, items: { type: 'string', enum: [...NOTIFICATION_EVENTS] } },
  projects: { type: 'array', items: text },
};
const target = (type: string | string[], properties: Record<string, unknown>, required: string[]) => ({
  type: 'object',
  additionalProperties: false,
  required: ['type', ...required],
  properties: { type: Array.isArray(type) ? { type: 'string', enum: type } : { const: type }, ...common, ...properties },
});

/** JSON schema of the `notifications` section (lib/config-file.ts validates the whole file with it). */
export const NOTIFICATIONS_SECTION_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    max_attempts: { type: 'integer', minimum: 1, maximum: 100 },
    retry_backoff_seconds: { type: 'integer', minimum: 1, maximum: 3600 },
    webhook_urls: { type: 'array', items: httpUrl },
    webhook_secret: text,
    github_token: text,
    github_url: httpUrl,
    gitlab_token: text,
    gitlab_url: httpUrl,
    gitea_token: text,
    gitea_url: httpUrl,
    targets: {
      type: 'array',
      maxItems: 100,
      items: {
        type: 'object',
        required: ['type'],
        properties: { type: { type: 'string', enum: [...NOTIFICATION_TYPES] } },
        allOf: [
          { if: { properties: { type: { const: 'webhook' } } }, then: target('webhook', { url: httpUrl, secret: text }, ['url']) },
          {
            if: { properties: { type: { enum: ['github_status', 'gitea_status', 'gitlab_status'] } } },
            then: target(['github_status', 'gitea_status', 'gitlab_status'], { api_url: httpUrl, token: text, repositories: { type: 'object', additionalProperties: text } }, []),
          },
          { if: { properties: { type: { const: 'slack' } } }, then: target('slack', { webhook_url: httpUrl }, ['webhook_url']) },
          {
            if: { properties: { type: { const: 'email' } } },
            then: target(
              'email',
              {
                smtp: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['host'],
                  properties: {
                    host: text,
                    port: { type: 'integer', minimum: 1, maximum: 65535 },
                    secure: { type: 'boolean' },
                    username: text,
                    password: text,
                    ignore_tls: { type: 'boolean' },
                  },
                },
                from: text,
                to: { type: 'array', minItems: 1, items: text },
              },
              ['smtp', 'from', 'to'],
            ),
          },
        ],
      },
    },
  },
};

/** A target with its name settled and its defaults applied. */
export type NotificationTarget = NotificationTargetConfig & { name: string };

export const DEFAULT_MAX_ATTEMPTS = 5;
export const DEFAULT_RETRY_BACKOFF_SECONDS = 2;

export const DEFAULT_API_URLS: Record<ForgeStatusType, string | undefined> = {
  github_status: 'https://api.github.com',
  gitlab_status: 'https://gitlab.com/api/v4',
  gitea_status: undefined,
};

/** Every target the section declares: circus's flat keys first, then `targets`, each with a unique name. */
export function notificationTargets(section: NotificationsConfigSection | undefined): NotificationTarget[] {
  if (!section) return [];
  const out: NotificationTarget[] = [];
  (section.webhook_urls ?? []).forEach((url, i) => out.push({ type: 'webhook', name: `webhook-url-${i + 1}`, url, secret: section.webhook_secret }));
  if (section.github_token) out.push({ type: 'github_status', name: 'github', token: section.github_token, api_url: section.github_url });
  if (section.gitea_token && section.gitea_url) out.push({ type: 'gitea_status', name: 'gitea', token: section.gitea_token, api_url: section.gitea_url });
  if (section.gitlab_token) out.push({ type: 'gitlab_status', name: 'gitlab', token: section.gitlab_token, api_url: section.gitlab_url });
  (section.targets ?? []).forEach((t, i) => out.push({ ...t, name: t.name ?? `${t.type}-${i + 1}` }));
  return out;
}

/** Names that two targets share (the config is refused: a task must find its one target by name). */
export function duplicateTargetNames(section: NotificationsConfigSection | undefined): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const t of notificationTargets(section)) (seen.has(t.name) ? dup : seen).add(t.name);
  return [...dup];
}

export function targetWants(t: NotificationTarget, event: NotificationEventKind, project: string): boolean {
  return targetWantsKind(t, event) && (!t.projects || t.projects.includes(project));
}

/** Whether the target wants events of this kind, of some project. */
export function targetWantsKind(t: NotificationTarget, event: NotificationEventKind): boolean {
  const events = t.events ?? (t.type === 'email' ? ['build_finished'] : NOTIFICATION_EVENTS);
  return events.includes(event);
}

export function isForgeStatus(t: NotificationTarget): t is ForgeStatusTargetConfig & { name: string } {
  return t.type === 'github_status' || t.type === 'gitea_status' || t.type === 'gitlab_status';
}
