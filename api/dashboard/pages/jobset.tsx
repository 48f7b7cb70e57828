import { definePage, firstRead, isUuid } from '../page';
import { Layout } from '../layout';
import { ACTIVE, Empty, Pager, Section, Status, statusTone, Time, Scroll, ItemList } from '../components';
import { cutPage, pageWindow } from '../paging';
import { findJobsetWithProjectName } from '../../queries/jobsets';
import { jobsetMatrix } from '../../queries/jobset-matrix';
import { recentEvaluations } from '../../queries/build-queue';

const MATRIX_COLUMNS = 10;
const MATRIX_ROWS = 50;

/** A jobset: the job × evaluation matrix of statuses, its evaluations, and "evaluate now". */
export const jobsetPage = definePage({
  path: '/jobsets/{id}',
  prefetch: ({ deps, params }) => (isUuid(params.id) ? findJobsetWithProjectName(deps.db, params.id) : Promise.resolve(undefined)),
  async render(input) {
    const { deps, viewer, params, query } = input;
    if (!isUuid(params.id)) return { notFound: 'no such jobset' };
    const jobset = await firstRead(input, () => findJobsetWithProjectName(deps.db, params.id));
    if (!jobset) return { notFound: 'no such jobset' };
    const jobsWindow = pageWindow(query, 'jobs', MATRIX_ROWS);
    const evalWindow = pageWindow(query, 'evals');
    const [matrix, evaluations] = await Promise.all([
      jobsetMatrix(deps.db, jobset.id, { limit: jobsWindow.limit, offset: jobsWindow.offset, columns: MATRIX_COLUMNS }),
      recentEvaluations(deps.db, { jobsetId: jobset.id, limit: evalWindow.limit + 1, offset: evalWindow.offset }),
    ]);
    const evals = cutPage(evaluations, evalWindow);
    return (
      <Layout title={`${jobset.project_name} / ${jobset.name}`} viewer={viewer} current="/projects">
        <p class="crumbs">
          <a href="/projects">Projects</a> / <a href={`/projects/${jobset.project_id}`}>{jobset.project_name}</a> / {jobset.name}
        </p>
        <p class="muted">
          <code>{jobset.nix_expression}</code> {jobset.flake_mode ? '(flake)' : ''} · {jobset.check_interval > 0 ? `checked every ${jobset.check_interval} s` : 'no schedule'} · {jobset.state}
        </p>
        {jobset.error_message ? (
          <div class="error-box" role="alert">
            <h2>Last check failed</h2>
            <pre>{jobset.error_message}</pre>
          </div>
        ) : null}
        {viewer.may('POST', '/api/v1/evaluations/trigger') ? (
          <form class="api-form inline" data-api-method="POST" data-api-path="/api/v1/evaluations/trigger" data-after="/evaluations/{id}" hidden>
            <input type="hidden" name="jobset_id" value={jobset.id} />
            <button type="submit" data-action="evaluate">
              Evaluate now
            </button>
            <span class="form-error" role="alert" />
          </form>
        ) : null}
        <Section title="Jobs" id="matrix">
          {matrix.jobs.length === 0 ? (
            <Empty>No job yet: no evaluation has recorded builds.</Empty>
          ) : (
            <Scroll label="Status of each job in the newest evaluations (newest first)">
              <table class="matrix">
                <caption class="sr-only">Status of each job in the newest evaluations (newest first)</caption>
                <thead>
                  <tr>
                    <th scope="col">Job</th>
                    {matrix.evaluations.map((e) => (
                      <th scope="col">
                        <a href={`/evaluations/${e.id}`} title={e.commit_hash ?? undefined}>
                          {new Date(e.created_at).toISOString().slice(5, 16).replace('T', ' ')}
                        </a>
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {matrix.jobs.map((job) => (
                    <tr>
                      <th scope="row">{job}</th>
                      {matrix.evaluations.map((e) => {
                        const cell = matrix.cells.get(job)?.get(e.id);
                        if (!cell) {
                          return (
                            <td class="muted">
                              <span aria-hidden="true">·</span>
                              <span class="sr-only">not in this evaluation</span>
                            </td>
                          );
                        }
                        // A cell is its link, styled as the status badge: the row's job and the column's evaluation
                        // are its table headers. Only a queued or running build's badge carries its ID for the
                        // script's live status (a finished one does not change while the page is open).
                        return (
                          <td>
                            {ACTIVE.has(cell.status) ? (
                              <a href={`/builds/${cell.build_id}`}>
                                <Status status={cell.status} buildId={cell.build_id} />
                              </a>
                            ) : (
                              <a href={`/builds/${cell.build_id}`} class={`status ${statusTone(cell.status)}`}>
                                {cell.status.replace(/_/g, ' ')}
                              </a>
                            )}
                          </td>
                        );
                      })}
                    </tr>
                  ))}
                </tbody>
              </table>
            </Scroll>
          )}
          <Pager path={`/jobsets/${jobset.id}`} window={jobsWindow} more={matrix.more} param="jobs" />
        </Section>
        <Section title="Evaluations" id="evaluations">
          <ItemList
            items={evals.rows}
            empty="No evaluation yet."
            item={(e) => (
              <>
                <a href={`/evaluations/${e.id}`}>
                  <Time at={e.created_at} />
                </a>{' '}
                <Status status={e.status} /> {e.commit_hash ? <code>{String(e.commit_hash).slice(0, 12)}</code> : null} {e.nr_errors ? <span class="status bad">{e.nr_errors} errors</span> : null}
              </>
            )}
          />
          <Pager path={`/jobsets/${jobset.id}`} window={evalWindow} more={evals.more} param="evals" />
        </Section>
      </Layout>
    );
  },
});
