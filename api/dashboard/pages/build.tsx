import { defineRecordPage } from '../page';
import { Layout } from '../layout';
import { ApiButton, BuildTable, Duration, Empty, Section, Status, Time, Table, ItemList, TimeFact } from '../components';
import { findBuildWithNames, listBuildProducts, listBuildSteps, relatedBuilds } from '../../queries/builds';
import { findBuilder } from '../../queries/builders';
import { buildWaitFacts } from '../build-wait-facts';
import { whyBuildWaits } from '../why-build-waits';
import { isActiveBuildStatus } from '../../../lib/statuses';
import { StarToggle, StarToggleOfBuild } from './starred';
import { render as renderHtml } from 'preact-render-to-string';
import { personalSlot } from '../personal-parts';

/** The most dependencies, and dependents, listed; the heading counts them all. */
const RELATED_SHOWN = 50;

/** "and N more" under a list that shows the first `shown` of `total`. */
function MoreNotShown({ shown, total }: { shown: number; total: number }) {
  return total > shown ? <p class="muted">and {total - shown} more, by job name</p> : null;
}

function bytes(n: number | null): string {
  if (n === null) return '';
  return n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** Where a render shared by role leaves the viewer's star toggle of the build's job. */
const STAR_SLOT = personalSlot('star');

/**
 * A build: status, timing, builder, steps, why it waits, live log, products, dependencies, actions, its workflow.
 * Signed-in viewers of one role share its render; their star toggle is filled in per request.
 */
export const buildPage = defineRecordPage({
  path: '/builds/{id}',
  noun: 'build',
  find: (db, id) => findBuildWithNames(db, id),
  sharedByRole: {
    personalParts: async ({ deps, viewer, params }) => {
      const star = await StarToggleOfBuild(deps.db, viewer, params.id);
      return { [STAR_SLOT]: star ? renderHtml(star) : '' };
    },
  },
  async render(input, row) {
    const { deps, viewer } = input;
    const dependenciesRead = relatedBuilds(deps.db, row.id, 'dependencies', { limit: RELATED_SHOWN });
    const [steps, products, dependencies, dependents, builder, star, waitFacts] = await Promise.all([
      listBuildSteps(deps.db, row.id),
      listBuildProducts(deps.db, row.id),
      dependenciesRead,
      relatedBuilds(deps.db, row.id, 'dependents', { limit: RELATED_SHOWN }),
      row.builder_id ? findBuilder(deps.db, row.builder_id) : Promise.resolve(undefined),
      viewer.sharedByRole ? STAR_SLOT : StarToggle(deps.db, viewer, row),
      row.status === 'pending' ? buildWaitFacts(deps.db, deps.config, row, dependenciesRead) : Promise.resolve(undefined),
    ]);
    const waits = waitFacts ? whyBuildWaits(waitFacts) : [];
    const workflowId = row.workflow_id ?? `build-${row.id}`;
    const temporalUrl = `${deps.config.temporalUiUrl}/namespaces/${encodeURIComponent(deps.config.temporalNamespace)}/workflows/${encodeURIComponent(workflowId)}`;
    const active = isActiveBuildStatus(row.status);
    const actions = [
      viewer.may('POST', '/api/v1/builds/{id}/cancel') ? (
        <span data-when="active" hidden={!active}>
          <ApiButton method="POST" path={`/api/v1/builds/${row.id}/cancel`} label="Cancel" name="cancel" after="status" tone="danger" confirm="Cancel this build?" />
        </span>
      ) : null,
      viewer.may('POST', '/api/v1/builds/{id}/bump') ? (
        <span data-when="active" hidden={!active}>
          <ApiButton method="POST" path={`/api/v1/builds/${row.id}/bump`} label="Bump to front" name="bump" after="reload" />
        </span>
      ) : null,
      viewer.may('POST', '/api/v1/builds/{id}/restart') ? (
        <span data-when="finished" hidden={active}>
          <ApiButton method="POST" path={`/api/v1/builds/${row.id}/restart`} label="Restart" name="restart" after="status" />
        </span>
      ) : null,
      viewer.may('PUT', '/api/v1/builds/{id}/keep/{value}') ? (
        <ApiButton method="PUT" path={`/api/v1/builds/${row.id}/keep/${row.keep ? 'false' : 'true'}`} label={row.keep ? 'Stop keeping' : 'Keep'} name="keep" after="reload" />
      ) : null,
      star,
    ].filter((a) => a !== null);
    return (
      <Layout title={`Build ${row.job_name}`} viewer={viewer} current="/projects">
        <p class="crumbs">
          <a href={`/projects/${row.project_id}`}>{row.project_name}</a> / <a href={`/jobsets/${row.jobset_id}`}>{row.jobset_name}</a> / <a href={`/evaluations/${row.evaluation_id}`}>evaluation</a> / {row.job_name}
        </p>
        <div class="build-head" data-build-page={row.id}>
          <Status status={row.status} buildId={row.id} />
          {actions.length > 0 ? <div class="actions">{actions}</div> : null}
        </div>
        <dl class="facts">
          <dt>System</dt>
          <dd>{row.system}</dd>
          <dt>Priority</dt>
          <dd>{row.priority}</dd>
          <TimeFact term="Queued" at={row.created_at} />
          <TimeFact term="Started" at={row.started_at} />
          <TimeFact term="Finished" at={row.completed_at} />
          <dt>Took</dt>
          <dd>
            <Duration from={row.started_at} to={row.completed_at} />
          </dd>
          <dt>Builder</dt>
          <dd>{builder?.name ?? row.agent_machine_id ?? (row.started_at ? "the worker's own Nix" : '—')}</dd>
          <dt>Derivation</dt>
          <dd>
            <code>{row.drv_path}</code>
          </dd>
          {Object.entries(row.outputs).map(([name, path]) => (
            <>
              <dt>Output {name}</dt>
              <dd>
                <code>{path}</code>
              </dd>
            </>
          ))}
          <dt>Workflow</dt>
          <dd>
            <a href={temporalUrl} rel="noopener">
              {workflowId} in the Temporal UI
            </a>
          </dd>
          {row.keep ? (
            <>
              <dt>Kept</dt>
              <dd>yes, never garbage-collected</dd>
            </>
          ) : null}
        </dl>
        {row.error_message ? (
          <div class="error-box">
            <h2>Error</h2>
            <pre>{row.error_message}</pre>
          </div>
        ) : null}
        {waits.length > 0 ? (
          <Section title="Why it waits" id="waits">
            <ul class="list">
              {waits.map((w) => (
                <li data-wait-reason={w.kind}>
                  {w.text}
                  {w.kind === 'dependencies' ? (
                    <ul>
                      {w.dependencies.map((d) => (
                        <li>
                          <a href={`/builds/${d.id}`}>{d.job_name}</a> <Status status={d.status} buildId={d.id} />
                        </li>
                      ))}
                    </ul>
                  ) : null}
                </li>
              ))}
            </ul>
          </Section>
        ) : null}
        <Section title="Steps" id="steps">
          {steps.length === 0 ? (
            <Empty>No step yet.</Empty>
          ) : (
            <Table caption="Build steps" columns={['#', 'Derivation', 'Machine', 'Status', 'Phase', 'Took']}>
              {steps.map((s) => (
                <tr>
                  <td class="num">{s.step_number}</td>
                  <td>
                    <code>{s.drv_path}</code>
                  </td>
                  <td>{s.machine ?? '—'}</td>
                  <td>
                    <Status status={s.status} />
                  </td>
                  <td>{s.phase ?? '—'}</td>
                  <td>
                    <Duration from={s.started_at} to={s.completed_at} />
                  </td>
                </tr>
              ))}
            </Table>
          )}
        </Section>
        <Section title="Log" id="log">
          <p>
            <a href={`/api/v1/builds/${row.id}/log`}>Full log as text</a>
          </p>
          <pre class="log" role="log" data-log-stream={`/api/v1/builds/${row.id}/log/stream`} tabindex={0} aria-label="Build log" aria-live="off" />
        </Section>
        <Section title="Products" id="products">
          <ItemList
            items={products}
            empty="No products."
            item={(p) => (
              <>
                {p.is_directory ? <span>{p.name}</span> : <a href={`/api/v1/builds/${row.id}/products/${p.id}/download`}>{p.name}</a>} <span class="muted">{p.product_type}{p.subtype ? `/${p.subtype}` : ''} {bytes(p.file_size)}</span>
                {p.sha256_hash ? <code class="hash">sha256 {p.sha256_hash}</code> : null}
              </>
            )}
          />
        </Section>
        <Section title={`Dependencies (${dependencies.total})`} id="dependencies">
          {dependencies.total === 0 ? <Empty>None.</Empty> : <BuildTable builds={dependencies.rows} caption="Builds this build depends on" />}
          <MoreNotShown shown={dependencies.rows.length} total={dependencies.total} />
        </Section>
        <Section title={`Dependents (${dependents.total})`} id="dependents">
          {dependents.total === 0 ? <Empty>None.</Empty> : <BuildTable builds={dependents.rows} caption="Builds that depend on this build" />}
          <MoreNotShown shown={dependents.rows.length} total={dependents.total} />
        </Section>
      </Layout>
    );
  },
});
