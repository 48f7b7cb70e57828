import type { Db } from '../../lib/db';

/** A starred job as the API shows it: circus's StarredJob fields, the names, and the job's latest build. */
export interface StarredJobView {
  id: string;
  user_id: string;
  project_id: string;
  jobset_id: string;
  job_name: string;
  created_at: Date;
  project_name: string;
  jobset_name: string;
  latest_build: { id: string; status: string; created_at: Date; completed_at: Date | null } | null;
}

interface StarredJobRow extends Omit<StarredJobView, 'latest_build'> {
  latest_build_id: string | null;
  latest_build_status: string | null;
  latest_build_created_at: Date | null;
  latest_build_completed_at: Date | null;
}

export interface StarTarget {
  project_id: string;
  jobset_id: string;
  job_name: string;
}

function viewOf(row: StarredJobRow): StarredJobView {
  const { latest_build_id, latest_build_status, latest_build_created_at, latest_build_completed_at, ...star } = row;
  return {
    ...star,
    latest_build:
      latest_build_id === null
        ? null
        : { id: latest_build_id, status: latest_build_status!, created_at: latest_build_created_at!, completed_at: latest_build_completed_at },
  };
}

/**
 * Stars with their project and jobset names and the newest build of each job (by creation), read per
 * star through the builds (jobset_id, job_name, created_at) index.
 */
function starsWithLatestBuild(db: Db) {
  return db('starred_jobs as s')
    .join('projects as p', 'p.id', 's.project_id')
    .join('jobsets as j', 'j.id', 's.jobset_id')
    .joinRaw(
      `left join lateral (
         select b.id, b.status, b.created_at, b.completed_at from builds b
         where b.jobset_id = s.jobset_id and b.job_name = s.job_name
         order by b.created_at desc, b.id desc limit 1
       ) lb on true`,
    )
    .select(
      's.id', 's.user_id', 's.project_id', 's.jobset_id', 's.job_name', 's.created_at',
      'p.name as project_name', 'j.name as jobset_name',
      'lb.id as latest_build_id', 'lb.status as latest_build_status',
      'lb.created_at as latest_build_created_at', 'lb.completed_at as latest_build_completed_at',
    );
}

export async function listStarredJobs(db: Db, userId: string, page: { limit: number; offset: number }): Promise<StarredJobView[]> {
  const rows: StarredJobRow[] = await starsWithLatestBuild(db)
    .where('s.user_id', userId)
    .orderBy([{ column: 'p.name' }, { column: 'j.name' }, { column: 's.job_name' }, { column: 's.id' }])
    .limit(page.limit)
    .offset(page.offset);
  return rows.map(viewOf);
}

export async function findStarredJob(db: Db, userId: string, id: string): Promise<StarredJobView | undefined> {
  const row: StarredJobRow | undefined = await starsWithLatestBuild(db).where({ 's.id': id, 's.user_id': userId }).first();
  return row && viewOf(row);
}

/** The id of the user's star on a job of a jobset, if the user starred it (the unique (user, jobset, job) index). */
export async function findStarOfJob(db: Db, userId: string, jobsetId: string, jobName: string): Promise<string | undefined> {
  const row: { id: string } | undefined = await db('starred_jobs').where({ user_id: userId, jobset_id: jobsetId, job_name: jobName }).first('id');
  return row?.id;
}

/** A build's job, with the user's star of it (null when they have none); undefined for no such build. */
export async function findStarOfBuildJob(db: Db, userId: string, buildId: string): Promise<(StarTarget & { star_id: string | null }) | undefined> {
  return db('builds as b')
    .leftJoin('starred_jobs as s', function () {
      this.on('s.jobset_id', 'b.jobset_id').andOn('s.job_name', 'b.job_name').andOnVal('s.user_id', userId);
    })
    .where('b.id', buildId)
    .first('b.project_id', 'b.jobset_id', 'b.job_name', 's.id as star_id');
}

/** Whether the jobset belongs to the project and has ever had a build of that job: what "the job exists" means. */
export async function jobExists(db: Db, target: StarTarget): Promise<boolean> {
  const row = await db('builds as b')
    .join('jobsets as j', 'j.id', 'b.jobset_id')
    .where({ 'b.jobset_id': target.jobset_id, 'b.job_name': target.job_name, 'j.project_id': target.project_id })
    .first(db.raw('1 as found'));
  return row !== undefined;
}

/** Stars the job for the user; a second star of the same job keeps the first (same id). Answers the star's id. */
export async function starJob(db: Db, userId: string, target: StarTarget): Promise<string> {
  const [inserted] = await db('starred_jobs')
    .insert({ user_id: userId, ...target })
    .onConflict(['user_id', 'jobset_id', 'job_name'])
    .ignore()
    .returning('id');
  if (inserted) return inserted.id as string;
  const existing = await db('starred_jobs').where({ user_id: userId, jobset_id: target.jobset_id, job_name: target.job_name }).first('id');
  return existing.id as string;
}

/** Removes one of the user's stars; false when the user has no star with that id. */
export async function unstarJob(db: Db, userId: string, id: string): Promise<boolean> {
  return (await db('starred_jobs').where({ id, user_id: userId }).delete()) > 0;
}
