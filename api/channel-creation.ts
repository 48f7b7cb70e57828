import type { Db } from '../lib/db';
import { invalidField, notFound } from './errors';
import { findProject } from './queries/projects';
import { findJobsetRow } from './queries/build-lifecycle';
import { insertChannel, type ChannelFields, type ChannelRow } from './queries/channels';
import { promoteLatestGoodEvaluation } from './channel-promotion';

/** The longest aggregate job name a channel takes (POST /api/v1/channels' aggregate_job, the dashboard's form). */
export const AGGREGATE_JOB_MAX_LENGTH = 1000;

/**
 * A new channel of a project's jobset (POST /api/v1/channels and the dashboard's form): refuses an unknown
 * project or jobset (404) and a jobset of another project (400, naming `jobsetField`); a name in use is the
 * database's unique violation (a 409 through fromDatabaseError). It starts at the newest good evaluation.
 */
export async function createChannel(db: Db, fields: ChannelFields, jobsetField = 'body.jobset_id'): Promise<ChannelRow> {
  const project = await findProject(db, fields.project_id);
  if (!project) throw notFound('project', fields.project_id);
  const jobset = await findJobsetRow(db, fields.jobset_id);
  if (!jobset) throw notFound('jobset', fields.jobset_id);
  if (jobset.project_id !== project.id) throw invalidField(jobsetField, `jobset ${jobset.id} belongs to another project than ${project.name}`);
  const created = await insertChannel(db, { project_id: project.id, name: fields.name, jobset_id: jobset.id, aggregate_job: fields.aggregate_job });
  return promoteLatestGoodEvaluation(db, created);
}
