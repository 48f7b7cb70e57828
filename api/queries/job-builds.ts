import type { Db } from '../../lib/db';

/** The builds of one job of a jobset, named as in /job/{project}/{jobset}/{job}/… */
export interface JobRef {
  project: string;
  jobset: string;
  job: string;
}

export interface JobBuild {
  id: string;
  status: string;
  evaluation_id: string;
  completed_at: Date | null;
}

const UNFINISHED = ['pending', 'running'];

/** The jobset's id, or undefined when the project or jobset does not exist. */
async function jobsetIdOf(db: Db, ref: JobRef): Promise<string | undefined> {
  const row: { id: string } | undefined = await db('jobsets as j')
    .join('projects as p', 'p.id', 'j.project_id')
    .where({ 'p.name': ref.project, 'j.name': ref.jobset })
    .first('j.id');
  return row?.id;
}

/**
 * What a badge shows: whether the job exists at all, and its newest finished build (by the build's
 * creation, i.e. the newest evaluation that has a result for it).
 */
export async function latestFinishedJobBuild(db: Db, ref: JobRef): Promise<{ known: boolean; build: JobBuild | undefined }> {
  const jobsetId = await jobsetIdOf(db, ref);
  if (!jobsetId) return { known: false, build: undefined };
  const newest = db('builds').where({ jobset_id: jobsetId, job_name: ref.job }).orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]);
  const known = (await newest.clone().first('id')) !== undefined;
  const build: JobBuild | undefined = known ? await newest.clone().whereNotIn('status', UNFINISHED).first('id', 'status', 'evaluation_id', 'completed_at') : undefined;
  return { known, build };
}

/** The job's newest succeeded build, or undefined. */
export async function latestSucceededJobBuild(db: Db, ref: JobRef): Promise<JobBuild | undefined> {
  const jobsetId = await jobsetIdOf(db, ref);
  if (!jobsetId) return undefined;
  return db('builds')
    .where({ jobset_id: jobsetId, job_name: ref.job, status: 'succeeded' })
    .orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }])
    .first('id', 'status', 'evaluation_id', 'completed_at');
}
