import { definePage } from '../page';
import { Layout } from '../layout';
import { ApiButton, Empty, Pager, Status, Table, Time } from '../components';
import { cutPage, pageWindow } from '../paging';
import { NOTIFICATION_TASK_STATUSES, pageNotificationTasks, type NotificationTaskStatus } from '../../../lib/notifications/task-records';

/**
 * Notification deliveries (GET /api/v1/admin/notification-tasks' query, paged, newest first, by status),
 * with a retry button on the failed ones (POST …/retry, admins). Payloads are not shown; the API has them.
 */
export const notificationTasksPage = definePage({
  path: '/admin/notification-tasks',
  async render({ deps, viewer, query }) {
    if (!viewer.principal) return { redirect: '/login?next=/admin/notification-tasks' };
    if (!viewer.may('GET', '/api/v1/admin/notification-tasks')) return { forbidden: 'The admin pages are for admins.' };
    const status = (NOTIFICATION_TASK_STATUSES as readonly string[]).includes(String(query.status)) ? (query.status as NotificationTaskStatus) : undefined;
    const window = pageWindow(query);
    const page = await pageNotificationTasks(deps.db, { status, limit: window.limit + 1, offset: window.offset });
    const { rows, more } = cutPage(page.items, window);
    const mayRetry = viewer.may('POST', '/api/v1/admin/notification-tasks/{id}/retry');
    return (
      <Layout title="Notification tasks" viewer={viewer} current="/admin">
        <p class="crumbs">
          <a href="/admin">Admin</a> / notification tasks
        </p>
        <nav aria-label="Filter by status" class="legend">
          Show{' '}
          <a href="/admin/notification-tasks" aria-current={status === undefined ? 'page' : undefined}>
            all
          </a>
          {NOTIFICATION_TASK_STATUSES.map((s) => (
            <>
              {' · '}
              <a href={`/admin/notification-tasks?status=${s}`} aria-current={status === s ? 'page' : undefined}>
                {s}
              </a>
            </>
          ))}
        </nav>
        {rows.length === 0 ? (
          <Empty>No notification task{status ? ` is ${status}` : ''}.</Empty>
        ) : (
          <Table caption="Notification tasks, newest first" columns={['Created', 'Target', 'Event', 'Status', 'Attempts', 'Last error', mayRetry ? { hidden: 'Actions' } : null]}>
            {rows.map((t) => (
              <tr data-task={t.id}>
                <td>
                  <Time at={t.created_at} />
                </td>
                <td>
                  {t.target} <span class="muted">({t.notification_type})</span>
                </td>
                <td>{t.event}</td>
                <td>
                  <Status status={t.status} />
                </td>
                <td class="num">
                  {t.attempts} / {t.max_attempts}
                </td>
                <td>{t.last_error ? <code>{t.last_error}</code> : <span class="muted">—</span>}</td>
                {mayRetry ? (
                  <td>{t.status === 'failed' ? <ApiButton method="POST" path={`/api/v1/admin/notification-tasks/${t.id}/retry`} label="Retry" name="retry-notification" /> : null}</td>
                ) : null}
              </tr>
            ))}
          </Table>
        )}
        <Pager path="/admin/notification-tasks" window={window} more={more} query={status ? { status } : {}} />
      </Layout>
    );
  },
});
