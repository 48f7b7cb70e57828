import type { Db } from '../../lib/db';
import type { NotificationEvent } from '../../lib/notifications/messages';
import type { NotificationEventKind } from '../../lib/notifications/targets';

/** The event of a build, read from the read model as it is now (one query). */
export async function buildEvent(db: Db, buildId: string, kind: NotificationEventKind): Promise<NotificationEvent | undefined> {
  const row = await db('builds as b')
    .join('jobsets as j', 'j.id', 'b.jobset_id')
    .join('projects as p', 'p.id', 'b.project_id')
    .join('evaluations as e', 'e.id', 'b.evaluation_id')
    .where('b.id', buildId)
    .first('b.id', 'b.job_name', 'b.status', 'b.system', 'b.error_message', 'b.evaluation_id', 'e.commit_hash', 'j.name as jobset', 'p.name as project', 'p.repository_url');
  if (!row) return undefined;
  return {
    kind,
    project: row.project,
    jobset: row.jobset,
    job: row.job_name,
    evaluationId: row.evaluation_id,
    buildId: row.id,
    commit: row.commit_hash ?? null,
    status: row.status,
    system: row.system,
    errorMessage: row.error_message ?? null,
    repositoryUrl: row.repository_url,
  };
}

/** The event of an evaluation, read from the read model as it is now. */
export async function evaluationEvent(db: Db, evaluationId: string, kind: NotificationEventKind): Promise<NotificationEvent | undefined> {
  const row = await db('evaluations as e')
    .join('jobsets as j', 'j.id', 'e.jobset_id')
    .join('projects as p', 'p.id', 'j.project_id')
    .where('e.id', evaluationId)
    .first('e.id', 'e.status', 'e.commit_hash', 'e.error_message', 'j.name as jobset', 'p.name as project', 'p.repository_url');
  if (!row) return undefined;
  return {
    kind,
    project: row.project,
    jobset: row.jobset,
    job: null,
    evaluationId: row.id,
    buildId: null,
    commit: row.commit_hash ?? null,
    status: row.status,
    system: null,
    errorMessage: row.error_message ?? null,
    repositoryUrl: row.repository_url,
  };
}
