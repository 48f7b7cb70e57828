import { invalidField, notFound } from '../errors';
import { identifier } from '../schemas';
import { findProjectByName } from '../queries/projects';
import { findJobsetByName } from '../queries/jobsets';
import { AGGREGATE_JOB_MAX_LENGTH, createChannel } from '../channel-creation';
import { promoteByHand, PROMOTE_ACTION } from '../channel-promotion';
import { defineFormAction } from './form-action';
import { isUuid } from './page';

const NAME_PATTERN = new RegExp(String(identifier.pattern));
const NAME_MAX = Number(identifier.maxLength);

/** The channels page's form: POST /api/v1/channels's work, by project and jobset name, for whoever may call it. */
export const createChannelForm = defineFormAction({
  path: '/channels',
  api: { method: 'POST', path: '/api/v1/channels' },
  async run({ deps, field }) {
    const name = field('name');
    if (!NAME_PATTERN.test(name) || name.length > NAME_MAX) {
      throw invalidField('name', `a channel's name is 1 to ${NAME_MAX} letters, digits, '.', '_' or '-', not starting with '.' or '-'`);
    }
    const aggregateJob = field('aggregate_job');
    if (aggregateJob.length > AGGREGATE_JOB_MAX_LENGTH) throw invalidField('aggregate_job', `at most ${AGGREGATE_JOB_MAX_LENGTH} characters`);
    const projectName = field('project');
    const jobsetName = field('jobset');
    if (!projectName) throw invalidField('project', 'the project is required');
    if (!jobsetName) throw invalidField('jobset', 'the jobset is required');
    const project = await findProjectByName(deps.db, projectName);
    if (!project) throw notFound('project', projectName);
    const jobset = await findJobsetByName(deps.db, project.id, jobsetName);
    if (!jobset) throw notFound(`jobset of ${project.name}`, jobsetName);
    const fields = { project_id: project.id, name, jobset_id: jobset.id, aggregate_job: aggregateJob || null };
    const channel = await createChannel(deps.db, fields, 'jobset');
    return {
      redirect: `/channels/${channel.id}`,
      audit: { action: 'POST /api/v1/channels', targetKind: 'channel', targetId: channel.id, details: { ...fields, via: 'dashboard' } },
    };
  },
});

/** The channel page's form: promotes an evaluation of its jobset by hand (POST …/promote/{eval_id}'s work). */
export const promoteChannelForm = defineFormAction({
  path: '/channels/{id}/promote',
  api: { method: 'POST', path: '/api/v1/channels/{channel_id}/promote/{eval_id}' },
  async run({ deps, params, field }) {
    if (!isUuid(params.id)) throw notFound('channel', params.id);
    const evaluationId = field('evaluation_id');
    if (!isUuid(evaluationId)) throw invalidField('evaluation_id', 'choose an evaluation');
    const result = await promoteByHand(deps.db, deps.config, params.id, evaluationId);
    return {
      redirect: `/channels/${result.channel.id}`,
      audit: { action: PROMOTE_ACTION, targetKind: 'channel', targetId: result.channel.id, details: { ...result.auditDetails, via: 'dashboard' } },
    };
  },
});

export const FORM_ACTIONS = [createChannelForm, promoteChannelForm];
