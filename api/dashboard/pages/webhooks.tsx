import { defineRecordPage } from '../page';
import { Layout } from '../layout';
import { ApiButton, Empty, Section, Table, Time } from '../components';
import { findProject } from '../../queries/projects';
import { listWebhooks } from '../../queries/webhooks';
import { FORGE_TYPES } from '../../webhooks/forge-event';
import { FORGE_NAMES } from '../../routes/webhooks';
import { publicBaseUrl } from '../../public-url';

/**
 * A project's forge webhooks (GET /api/v1/projects/{id}/webhooks' query: at most one per forge, so one short
 * list): which forges may deliver, the URL to give each, register and delete. Secrets are write-only: the
 * query never reads them and the page never shows one.
 */
export const webhooksPage = defineRecordPage({
  path: '/projects/{id}/webhooks',
  noun: 'project',
  find: (db, id) => findProject(db, id),
  async render(input, project) {
    const { deps, viewer } = input;
    const webhooks = await listWebhooks(deps.db, project.id);
    const base = publicBaseUrl(input);
    const mayDelete = viewer.may('DELETE', '/api/v1/projects/{id}/webhooks/{webhook_id}');
    const free = FORGE_TYPES.filter((f) => !webhooks.some((w) => w.forge_type === f));
    return (
      <Layout title={`Webhooks of ${project.name}`} viewer={viewer} current="/projects">
        <p class="crumbs">
          <a href="/projects">Projects</a> / <a href={`/projects/${project.id}`}>{project.name}</a> / webhooks
        </p>
        <p class="muted">A forge's push or pull request delivered here starts the evaluation of the project's jobsets that follow it. The secret is stored sealed and never shown again.</p>
        {webhooks.length === 0 ? (
          <Empty>No webhook: the jobsets are checked on their interval only.</Empty>
        ) : (
          <Table caption={`Webhooks of ${project.name}`} columns={['Forge', 'Payload URL', 'Enabled', 'Registered', mayDelete ? { hidden: 'Actions' } : null]}>
            {webhooks.map((w) => (
              <tr>
                <td>{FORGE_NAMES[w.forge_type]}</td>
                <td>
                  <code>{`${base}/api/v1/webhooks/${project.id}/${w.forge_type}`}</code>
                </td>
                <td>{w.enabled ? 'yes' : 'no'}</td>
                <td>
                  <Time at={w.created_at} />
                </td>
                {mayDelete ? (
                  <td>
                    <ApiButton method="DELETE" path={`/api/v1/projects/${project.id}/webhooks/${w.id}`} label={`Delete the ${FORGE_NAMES[w.forge_type]} webhook`} name="delete-webhook" tone="danger" confirm={`Delete the ${FORGE_NAMES[w.forge_type]} webhook?`} />
                  </td>
                ) : null}
              </tr>
            ))}
          </Table>
        )}
        {free.length > 0 && viewer.may('POST', '/api/v1/projects/{id}/webhooks') ? (
          <Section title="Register a webhook" id="register">
            <form class="api-form card" data-api-method="POST" data-api-path={`/api/v1/projects/${project.id}/webhooks`} data-after="reload" hidden aria-label="Register a webhook">
              <p class="field">
                <label for="w-forge">Forge</label>
                <select id="w-forge" name="forge_type">
                  {free.map((f) => (
                    <option value={f}>{FORGE_NAMES[f]}</option>
                  ))}
                </select>
              </p>
              <p class="field">
                <label for="w-secret">Secret (GitHub, Gitea, Forgejo) or token (GitLab)</label>
                <input id="w-secret" name="secret" type="password" autocomplete="new-password" required minLength={8} maxLength={1024} />
                <small>At least 8 printable characters; give the forge the same one.</small>
              </p>
              <button type="submit">Register</button>
              <p class="form-error" role="alert" />
            </form>
          </Section>
        ) : null}
      </Layout>
    );
  },
});
