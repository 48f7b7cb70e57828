import { defineRecordPage } from '../page';
import { Layout } from '../layout';
import { Empty, Pager, Section, Status, Time, Scroll, ItemList } from '../components';
import { matrixRowsHtml } from '../matrix-rows';
import { cutPage, pageWindow } from '../paging';
import { findJobsetWithProjectName } from '../../queries/jobsets';
import { jobsetMatrix } from '../../queries/jobset-matrix';
import { recentEvaluations } from '../../queries/build-queue';
import type { Db } from '../../../lib/db';

const MATRIX_COLUMNS = 10;
const MATRIX_ROWS = 50;

/** The jobset page's windows of its query: the matrix's jobs (`?jobs=`) and the evaluations' list (`?evals=`). */
function windowsOf(query: Record<string, unknown>) {
  return { jobsWindow: pageWindow(query, 'jobs', MATRIX_ROWS), evalWindow: pageWindow(query, 'evals') };
}

/** The jobset page's reads, in one round: the jobset, its matrix and its evaluations all need only the jobset's ID. */
async function jobsetData(db: Db, jobsetId: string, query: Record<string, unknown>) {
  const { jobsWindow, evalWindow } = windowsOf(query);
  const [jobset, matrix, evaluations] = await Promise.all([
    findJobsetWithProjectName(db, jobsetId),
    jobsetMatrix(db, jobsetId, { limit: jobsWindow.limit, offset: jobsWindow.offset, columns: MATRIX_COLUMNS }),
    recentEvaluations(db, { jobsetId, limit: evalWindow.limit + 1, offset: evalWindow.offset }),
  ]);
  return jobset ? { jobset, matrix, evaluations } : undefined;
}

/** A jobset: the job × evaluation matrix of statuses, its evaluations, and "evaluate now". */
export const jobsetPage = defineRecordPage({
  path: '/jobsets/{id}',
  noun: 'jobset',
  find: jobsetData,
  async render({ viewer, query }, { jobset, matrix, evaluations }) {
    const { jobsWindow, evalWindow } = windowsOf(query);
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
                <tbody dangerouslySetInnerHTML={{ __html: matrixRowsHtml(matrix) }} />
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
