import { defineRoute, type JsonSchema, type RouteDef } from '../route';
import { conflict, invalidField } from '../errors';
import { arrayOf, errorBody } from '../schemas';
import { insertProject, type ProjectFields } from '../queries/projects';
import { insertJobset, type JobsetFields, type JobsetRow } from '../queries/jobsets';
import { withJobsetSchedules } from '../jobset-schedules';
import { isGitRefName, jobsetFieldProblems, throwIfProblems } from '../jobset-validation';
import { probeRepository } from '../repository-probe';
import { projectCreateBody, projectSchema, repositoryUrl } from './projects';
import { jobsetCreateBody, jobsetSchema } from './jobsets';

interface ProjectSetupBody extends ProjectFields {
  name: string;
  repository_url: string;
  jobsets: Array<JobsetFields & { name: string; nix_expression: string }>;
}

const projectSetupBody: JsonSchema = {
  ...projectCreateBody,
  required: ['name', 'repository_url', 'jobsets'],
  properties: {
    ...(projectCreateBody.properties as Record<string, JsonSchema>),
    jobsets: { type: 'array', maxItems: 100, items: jobsetCreateBody },
  },
};

const suggestedJobsetSchema: JsonSchema = {
  type: 'object',
  required: ['name', 'nix_expression', 'flake_mode', 'description'],
  properties: {
    name: { type: 'string' },
    nix_expression: { type: 'string' },
    flake_mode: { type: 'boolean' },
    description: { type: 'string' },
  },
};

const probeSchema: JsonSchema = {
  type: 'object',
  required: ['repository_url', 'is_flake', 'has_hydra_jobs', 'has_checks', 'files', 'suggested_jobsets'],
  properties: {
    repository_url: { type: 'string' },
    branch: { type: ['string', 'null'] },
    revision: { type: ['string', 'null'] },
    is_flake: { type: 'boolean' },
    has_hydra_jobs: { type: 'boolean' },
    has_checks: { type: 'boolean' },
    flake_evaluated: { type: 'boolean' },
    flake_outputs: { type: ['array', 'null'], items: { type: 'string' } },
    files: arrayOf({ type: 'string' }),
    suggested_jobsets: arrayOf(suggestedJobsetSchema),
  },
};

const errors = { 400: errorBody, 401: errorBody, 403: errorBody };

/** Refuses a setup body whose jobsets are invalid or share a name, before anything is written. */
function checkSetupJobsets(jobsets: ProjectSetupBody['jobsets']): void {
  throwIfProblems(jobsets.flatMap((jobset, i) => jobsetFieldProblems(jobset, undefined, `body.jobsets.${i}`)));
  const seen = new Map<string, number>();
  jobsets.forEach((jobset, i) => {
    const first = seen.get(jobset.name);
    if (first !== undefined) {
      throw conflict(`jobset name "${jobset.name}" appears twice (jobsets ${first} and ${i})`, [{ field: `body.jobsets.${i}.name`, message: 'duplicates another jobset of this setup' }]);
    }
    seen.set(jobset.name, i);
  });
}

export const projectSetupRoutes: RouteDef[] = [
  defineRoute<{}, {}, ProjectSetupBody>({
    method: 'POST',
    path: '/api/v1/projects/setup',
    summary: 'Create project + initial jobset in one call',
    tag: 'projects',
    access: 'create-projects',
    body: projectSetupBody,
    responses: {
      200: { type: 'object', required: ['project', 'jobsets'], properties: { project: projectSchema, jobsets: arrayOf(jobsetSchema) } },
      ...errors,
      409: errorBody,
    },
    handler: async ({ body }, rc) => {
      const { jobsets: jobsetBodies, ...projectFields } = body;
      checkSetupJobsets(jobsetBodies);
      const created = await withJobsetSchedules(rc.db, rc.deps.temporal, async (trx, schedules) => {
        const project = await insertProject(trx, projectFields);
        const jobsets: JobsetRow[] = [];
        for (const fields of jobsetBodies) {
          const jobset = await insertJobset(trx, project.id, fields);
          await schedules.sync(jobset, undefined);
          jobsets.push(jobset);
        }
        return { project, jobsets };
      });
      rc.audit = { targetKind: 'project', targetId: created.project.id };
      return created;
    },
  }),
  defineRoute<{}, {}, { repository_url: string; branch?: string }>({
    method: 'POST',
    path: '/api/v1/projects/probe',
    summary: 'Probe a repository URL for jobset hints',
    tag: 'projects',
    access: 'create-projects',
    body: {
      type: 'object',
      required: ['repository_url'],
      additionalProperties: false,
      properties: { repository_url: repositoryUrl, branch: { type: 'string', minLength: 1, maxLength: 255 } },
    },
    responses: { 200: probeSchema, ...errors },
    handler: async ({ body }, rc) => {
      if (body.branch !== undefined && !isGitRefName(body.branch)) throw invalidField('body.branch', 'must be a valid git branch name');
      const probe = await probeRepository(body.repository_url, { branch: body.branch });
      rc.audit = { targetKind: 'project', targetId: null, details: { repository_url: body.repository_url, branch: body.branch ?? null } };
      return probe;
    },
  }),
];
