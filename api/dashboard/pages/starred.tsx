import { definePage } from '../page';
import { Layout } from '../layout';
import { ApiButton, Empty, Pager, Status, Table, Time } from '../components';
import { cutPage, pageWindow } from '../paging';
import { findStarOfBuildJob, findStarOfJob, listStarredJobs, type StarTarget } from '../../queries/starred-jobs';
import type { Viewer } from '../viewer';
import type { Db } from '../../../lib/db';

/** The signed-in user's starred jobs (GET /api/v1/me/starred-jobs' query, paged), each with its newest build. */
export const starredPage = definePage({
  path: '/starred',
  async render({ deps, viewer, query }) {
    const userId = viewer.principal?.userId;
    if (!viewer.principal) return { redirect: '/login?next=/starred' };
    if (!userId) return { forbidden: 'Stars belong to users; this sign-in has no user.' };
    const window = pageWindow(query);
    const { rows, more } = cutPage(await listStarredJobs(deps.db, userId, { limit: window.limit + 1, offset: window.offset }), window);
    const mayUnstar = viewer.may('DELETE', '/api/v1/me/starred-jobs/{id}');
    return (
      <Layout title="Starred jobs" viewer={viewer} current="/starred">
        {rows.length === 0 ? (
          <Empty>No starred job yet: star one from a build's page.</Empty>
        ) : (
          <Table caption="Starred jobs with their newest build" columns={['Job', 'Project / jobset', 'Newest build', 'Queued', mayUnstar ? { hidden: 'Actions' } : null]}>
            {rows.map((s) => (
              <tr>
                <td>{s.latest_build ? <a href={`/builds/${s.latest_build.id}`}>{s.job_name}</a> : s.job_name}</td>
                <td>
                  <a href={`/projects/${s.project_id}`}>{s.project_name}</a> / <a href={`/jobsets/${s.jobset_id}`}>{s.jobset_name}</a>
                </td>
                <td>{s.latest_build ? <Status status={s.latest_build.status} buildId={s.latest_build.id} /> : <span class="muted">no build</span>}</td>
                <td>
                  <Time at={s.latest_build?.created_at} />
                </td>
                {mayUnstar ? (
                  <td>
                    <ApiButton method="DELETE" path={`/api/v1/me/starred-jobs/${s.id}`} label={`Unstar ${s.job_name}`} name="unstar" />
                  </td>
                ) : null}
              </tr>
            ))}
          </Table>
        )}
        <Pager path="/starred" window={window} more={more} />
      </Layout>
    );
  },
});

/** Star or unstar a build's job, for a signed-in user (nothing for a visitor or a key without a user). */
export async function StarToggle(db: Db, viewer: Viewer, job: StarTarget) {
  const userId = mayStar(viewer);
  if (!userId) return null;
  return <StarButton job={job} starId={await findStarOfJob(db, userId, job.jobset_id, job.job_name)} />;
}

/** StarToggle of the job of a build, read by the build's id (for a page that fills it per viewer). */
export async function StarToggleOfBuild(db: Db, viewer: Viewer, buildId: string) {
  const userId = mayStar(viewer);
  const job = userId ? await findStarOfBuildJob(db, userId, buildId) : undefined;
  return job ? <StarButton job={job} starId={job.star_id ?? undefined} /> : null;
}

/** The viewer's user id when they may star jobs. */
function mayStar(viewer: Viewer): string | undefined {
  const userId = viewer.principal?.userId;
  return userId && viewer.may('POST', '/api/v1/me/starred-jobs') ? userId : undefined;
}

/** Unstar when the viewer has starred the job (`starId`), else Star. */
function StarButton({ job, starId }: { job: StarTarget; starId: string | undefined }) {
  return starId ? (
    <ApiButton method="DELETE" path={`/api/v1/me/starred-jobs/${starId}`} label="Unstar job" name="unstar" tone="plain" />
  ) : (
    <ApiButton method="POST" path="/api/v1/me/starred-jobs" label="Star job" name="star" tone="plain" fields={{ project_id: job.project_id, jobset_id: job.jobset_id, job_name: job.job_name }} />
  );
}
