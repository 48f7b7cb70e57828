import { defineRecordPage } from '../page';
import { Layout } from '../layout';
import { BuildTable, Duration, Empty, Pager, Section, Status, Time, ItemList, TimeFact } from '../components';
import { cutPage, pageWindow } from '../paging';
import { compareEvaluations, evaluationView, findEvaluationInContext, type JobDiff, type JobFlip } from '../../queries/evaluations';
import { evaluationBuildRows } from '../../queries/builds';

/** The most jobs of one kind of change shown; the count says how many there are. */
const CHANGES_SHOWN = 100;

function JobList({ jobs, empty }: { jobs: Array<JobDiff | JobFlip>; empty: string }) {
  if (jobs.length === 0) return <Empty>{empty}</Empty>;
  return (
    <ul class="list">
      {jobs.slice(0, CHANGES_SHOWN).map((j) => {
        const id = 'build_id' in j ? j.build_id : j.new_build_id;
        const status = 'status' in j ? j.status : j.new_status;
        return (
          <li>
            <a href={`/builds/${id}`}>{j.job_name}</a> <span class="muted">{j.system}</span> <Status status={status} buildId={id} />
          </li>
        );
      })}
      {jobs.length > CHANGES_SHOWN ? <li class="muted">and {jobs.length - CHANGES_SHOWN} more</li> : null}
    </ul>
  );
}

/** An evaluation: its inputs, its errors in full, what changed against the previous one, and its builds. */
export const evaluationPage = defineRecordPage({
  path: '/evaluations/{id}',
  noun: 'evaluation',
  find: (db, id) => findEvaluationInContext(db, id),
  async render(input, row) {
    const { deps, viewer, query } = input;
    const window = pageWindow(query);
    const previousId = row.previous_id ?? undefined;
    const [view, diff, builds] = await Promise.all([
      evaluationView(deps.db, row, row.project_id),
      previousId ? compareEvaluations(deps.db, previousId, row.id) : Promise.resolve(undefined),
      evaluationBuildRows(deps.db, row.id, { limit: window.limit + 1, offset: window.offset }),
    ]);
    const page = cutPage(builds, window);
    return (
      <Layout title={`Evaluation of ${row.jobset_name}`} viewer={viewer} current="/projects">
        <p class="crumbs">
          <a href={`/projects/${view.project_id}`}>Project</a> / <a href={`/jobsets/${row.jobset_id}`}>{row.jobset_name}</a> / evaluation
        </p>
        <dl class="facts">
          <dt>Status</dt>
          <dd>
            <Status status={row.status} />
          </dd>
          <TimeFact term="Started" at={row.started_at ?? row.created_at} />
          <dt>Took</dt>
          <dd>
            <Duration from={row.started_at} to={row.completed_at} />
          </dd>
          <dt>Commit</dt>
          <dd>{row.commit_hash ? <code>{row.commit_hash}</code> : '—'}</dd>
          <dt>Builds</dt>
          <dd>
            {view.build_counts.total} ({view.build_counts.succeeded} succeeded, {view.build_counts.pending} queued, {view.build_counts.running} running)
          </dd>
        </dl>
        {row.error_message ? (
          <div class="error-box" role="alert">
            <h2>The evaluation failed</h2>
            <pre>{row.error_message}</pre>
          </div>
        ) : null}
        <Section title={`Errors (${view.errors.length})`} id="errors">
          {view.errors.length === 0 ? (
            <Empty>No job had an evaluation error.</Empty>
          ) : (
            view.errors.map((e) => (
              <details open={view.errors.length <= 5}>
                <summary>{e.job_name}</summary>
                <pre>{e.error_message}</pre>
              </details>
            ))
          )}
        </Section>
        <Section title="Changes against the previous evaluation" id="changes">
          {!diff ? (
            <Empty>This is the jobset's first evaluation.</Empty>
          ) : (
            <div class="grid">
              <div>
                <h3>Newly failing ({diff.newly_failing.length})</h3>
                <JobList jobs={diff.newly_failing} empty="None." />
              </div>
              <div>
                <h3>Fixed ({diff.fixed.length})</h3>
                <JobList jobs={diff.fixed} empty="None." />
              </div>
              <div>
                <h3>New jobs ({diff.new_jobs.length})</h3>
                <JobList jobs={diff.new_jobs} empty="None." />
              </div>
              <div>
                <h3>Removed jobs ({diff.removed_jobs.length})</h3>
                <JobList jobs={diff.removed_jobs} empty="None." />
              </div>
              <p class="muted">
                {diff.changed_jobs.length} jobs changed derivation, {diff.unchanged_count} unchanged. <a href={`/evaluations/${previousId}`}>Previous evaluation</a>
              </p>
            </div>
          )}
        </Section>
        <Section title="Inputs" id="inputs">
          <ItemList
            items={view.inputs}
            empty="No inputs recorded."
            item={(i) => (
              <>
                <strong>{i.name}</strong> ({i.input_type}) <code>{i.revision ?? i.value ?? ''}</code>
              </>
            )}
          />
        </Section>
        <Section title="Builds" id="builds">
          {page.rows.length === 0 ? <Empty>No build.</Empty> : <BuildTable builds={page.rows} caption="Builds of this evaluation, by job name" />}
          <Pager path={`/evaluations/${row.id}`} window={window} more={page.more} />
        </Section>
      </Layout>
    );
  },
});
