import { definePage } from '../page';
import { Layout } from '../layout';
import { ApiButton, Empty, Pager, Section, Time, Table, ItemList } from '../components';
import { cutPage, pageWindow } from '../paging';
import { listUsers } from '../../queries/users';
import { listApiKeys } from '../../queries/api-keys';
import { auditLogEntries } from '../../queries/audit-log';

const USERS_PER_PAGE = 50;
const KEYS_PER_PAGE = 50;

/** Administration: users (paged), API keys (never their secrets) and the audit log; notification tasks on their own page. */
export const adminPage = definePage({
  path: '/admin',
  async render({ deps, viewer, query }) {
    if (!viewer.principal) return { redirect: '/login?next=/admin' };
    if (viewer.principal.role !== 'admin') return { forbidden: 'The admin pages are for admins.' };
    const auditWindow = pageWindow(query, 'audit');
    const usersWindow = pageWindow(query, 'users', USERS_PER_PAGE);
    const keysWindow = pageWindow(query, 'keys', KEYS_PER_PAGE);
    const [users, keys, audit] = await Promise.all([
      listUsers(deps.db, { limit: usersWindow.limit + 1, offset: usersWindow.offset }),
      listApiKeys(deps.db, undefined, { limit: keysWindow.limit + 1, offset: keysWindow.offset }),
      auditLogEntries(deps.db, { limit: auditWindow.limit + 1, offset: auditWindow.offset }),
    ]);
    const auditPage = cutPage(audit, auditWindow);
    const userPage = cutPage(users, usersWindow);
    const keyPage = cutPage(keys, keysWindow);
    return (
      <Layout title="Admin" viewer={viewer} current="/admin">
        <p>
          <a href="/admin/notification-tasks">Notification tasks</a> (deliveries to forges and chats; retry the failed ones)
        </p>
        <Section title="Users" id="users">
          <Table caption="Users" columns={['Username', 'Role', 'Kind', 'Enabled', 'Last sign-in']}>
            {userPage.rows.map((u) => (
              <tr>
                <td>{u.username}</td>
                <td>{u.role}</td>
                <td>{u.user_type}</td>
                <td>{u.enabled ? 'yes' : 'no'}</td>
                <td>
                  <Time at={u.last_login_at} />
                </td>
              </tr>
            ))}
          </Table>
          <Pager path="/admin" window={usersWindow} more={userPage.more} param="users" />
        </Section>
        <Section title="API keys" id="keys">
          <ItemList
            items={keyPage.rows}
            empty="No API key."
            item={(k) => (
              <>
                <strong>{k.name}</strong> ({k.role}) · created <Time at={k.created_at} /> · last used <Time at={k.last_used_at} />{' '}
                <ApiButton method="DELETE" path={`/api/v1/api-keys/${k.id}`} label="Revoke" name="revoke-key" tone="danger" confirm={`Revoke the key ${k.name}?`} />
              </>
            )}
          />
          <Pager path="/admin" window={keysWindow} more={keyPage.more} param="keys" />
        </Section>
        <Section title="Audit log" id="audit">
          {auditPage.rows.length === 0 ? (
            <Empty>Nothing recorded yet.</Empty>
          ) : (
            <Table caption="Audit log, newest first" columns={['When', 'Who', 'Action', 'Target']}>
              {auditPage.rows.map((a) => (
                <tr>
                  <td>
                    <Time at={a.occurred_at} />
                  </td>
                  <td>{a.actor_name ?? a.actor_kind}</td>
                  <td>
                    <code>{a.action}</code>
                  </td>
                  <td>
                    {a.target_kind} {a.target_id ? <code>{a.target_id}</code> : null}
                  </td>
                </tr>
              ))}
            </Table>
          )}
          <Pager path="/admin" window={auditWindow} more={auditPage.more} param="audit" />
        </Section>
      </Layout>
    );
  },
});
