import type { TestStack } from '../support/stack';
import { seedBuild, seedEvaluation, seedJobset, seedProject, type Row } from '../support/seed';
import { enqueueNotifications, type NotificationDeps } from '../../activities/notifications/enqueue';
import { buildEvent } from '../../activities/notifications/events';
import type { NotificationsConfigSection } from '../../lib/notifications/targets';
import { eventually } from '../support/pipeline';

export const PUBLIC_URL = 'https://ci.example.org';

/** Replaces the config file through the admin route, with this notifications section. */
export async function configureNotifications(stack: TestStack, notifications: NotificationsConfigSection): Promise<void> {
  const res = await stack.request('PUT', '/api/v1/admin/config', { key: stack.adminKey, body: { contents: JSON.stringify({ notifications }) } });
  if (res.status !== 200) throw new Error(`config: ${res.status} ${res.text}`);
}

export function notificationDeps(stack: TestStack): NotificationDeps {
  return { db: stack.db, workflows: stack.temporal.workflows, configFile: stack.config.configFile, publicUrl: PUBLIC_URL };
}

/** A project (on a GitHub-looking repository), a jobset `main`, an evaluation at a commit and one running build of `job`. */
export async function seedRunningBuild(stack: TestStack, job = 'hello'): Promise<{ project: Row; evaluation: Row; build: Row }> {
  const project = await seedProject(stack.db, { repository_url: 'https://github.com/acme/hello.git' });
  const jobset = await seedJobset(stack.db, project.id, { name: 'main' });
  const evaluation = await seedEvaluation(stack.db, jobset.id);
  const build = await seedBuild(stack.db, { evaluation, job_name: job, status: 'running' });
  return { project, evaluation, build };
}

/** What the build activities do when a build starts or finishes: queue the event's notifications. */
export async function raiseBuildEvent(stack: TestStack, buildId: string, kind: 'build_started' | 'build_finished', status?: string): Promise<number> {
  if (status) await stack.db('builds').where({ id: buildId }).update({ status });
  const event = await buildEvent(stack.db, buildId, kind);
  if (!event) throw new Error(`no build ${buildId}`);
  return enqueueNotifications(notificationDeps(stack), event);
}

export async function taskRows(stack: TestStack, where: Record<string, unknown> = {}): Promise<Row[]> {
  return stack.db('notification_tasks').where(where).orderBy('seq');
}

/** Waits until every task matching `where` has reached one of `statuses`. */
export async function waitForTasks(stack: TestStack, where: Record<string, unknown>, statuses: string[], timeoutMs = 60_000): Promise<Row[]> {
  return eventually(`notification tasks ${JSON.stringify(where)} to be ${statuses.join('/')}`, async () => {
    const rows = await taskRows(stack, where);
    const open = rows.filter((r) => !statuses.includes(r.status));
    if (rows.length === 0) return undefined;
    if (open.length > 0) throw new Error(`still ${open.map((r) => `${r.event}:${r.status} (${r.last_error ?? ''})`).join(', ')}`);
    return rows;
  }, timeoutMs, 100);
}
