import { pageRows } from './page';
import type { Queryable } from '../../lib/db';

export type { Queryable } from '../../lib/db';

export const TRIGGER_MODES = ['source_change', 'interval'] as const;
export type TriggerMode = (typeof TRIGGER_MODES)[number];
export const JOBSET_STATES = ['enabled', 'disabled', 'one_shot', 'one_at_a_time'] as const;
export type JobsetState = (typeof JOBSET_STATES)[number];
export const INPUT_TYPES = ['git', 'string', 'boolean', 'build', 'path', 'nix'] as const;
export type InputType = (typeof INPUT_TYPES)[number];

export interface JobsetRow {
  id: string;
  project_id: string;
  name: string;
  description: string | null;
  nix_expression: string;
  flake_mode: boolean;
  enabled: boolean;
  /** Seconds between scheduled checks; 0 means no schedule. */
  check_interval: number;
  trigger_mode: TriggerMode;
  state: JobsetState;
  branch: string | null;
  branch_pattern: string | null;
  tag_pattern: string | null;
  scheduling_shares: number;
  keep_nr: number;
  systems: string[] | null;
  only_build_latest: boolean;
  path_filters: string[] | null;
  build_timeout: number;
  max_silent: number;
  error_message: string | null;
  last_checked_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** The writable fields of a jobset, as the create and update bodies carry them. */
export interface JobsetFields {
  name?: string;
  description?: string | null;
  nix_expression?: string;
  flake_mode?: boolean;
  enabled?: boolean;
  check_interval?: number;
  trigger_mode?: TriggerMode;
  state?: JobsetState;
  branch?: string | null;
  branch_pattern?: string | null;
  tag_pattern?: string | null;
  scheduling_shares?: number;
  keep_nr?: number;
  systems?: string[] | null;
  only_build_latest?: boolean;
  path_filters?: string[] | null;
  build_timeout?: number;
  max_silent?: number;
}

export interface JobsetInputRow {
  id: string;
  jobset_id: string;
  name: string;
  input_type: InputType;
  value: string;
  revision: string | null;
  created_at: Date;
}

export interface JobsetInputFields {
  name: string;
  input_type: InputType;
  value: string;
  revision?: string | null;
}

export async function pageJobsets(db: Queryable, projectId: string, page: { limit: number; offset: number }) {
  const base = db('jobsets').where({ project_id: projectId });
  const { rows, ...rest } = await pageRows<JobsetRow>(base, page, [{ column: 'name', order: 'asc' }]);
  return { items: rows, ...rest };
}

export async function listProjectJobsets(db: Queryable, projectId: string): Promise<JobsetRow[]> {
  return db('jobsets').where({ project_id: projectId }).orderBy('name');
}

/** The jobset `id` of project `projectId`; a jobset of another project is not found. */
export async function findJobset(db: Queryable, projectId: string, id: string, opts: { forUpdate?: boolean } = {}): Promise<JobsetRow | undefined> {
  const q = db('jobsets').where({ id, project_id: projectId }).first();
  return opts.forUpdate ? q.forUpdate() : q;
}

/** The names of some jobsets and of their projects, in one lookup by primary key (for lists that hold jobset ids). */
export async function jobsetNames(db: Queryable, ids: string[]): Promise<Map<string, { jobset_name: string; project_name: string }>> {
  if (ids.length === 0) return new Map();
  const rows: Array<{ id: string; jobset_name: string; project_name: string }> = await db('jobsets as j')
    .join('projects as p', 'p.id', 'j.project_id')
    .whereIn('j.id', [...new Set(ids)])
    .select('j.id', 'j.name as jobset_name', 'p.name as project_name');
  return new Map(rows.map(({ id, ...names }) => [id, names]));
}

/** A project's jobset by its name (the unique index on (project_id, name)). */
export async function findJobsetByName(db: Queryable, projectId: string, name: string): Promise<JobsetRow | undefined> {
  return db('jobsets').where({ project_id: projectId, name }).first();
}

export async function findJobsetById(db: Queryable, id: string): Promise<JobsetRow | undefined> {
  return db('jobsets').where({ id }).first();
}

/** A jobset with its project's name, in one lookup by primary key. */
export async function findJobsetWithProjectName(db: Queryable, id: string): Promise<(JobsetRow & { project_name: string }) | undefined> {
  return db('jobsets').join('projects', 'projects.id', 'jobsets.project_id').where('jobsets.id', id).first('jobsets.*', 'projects.name as project_name');
}

export async function insertJobset(db: Queryable, projectId: string, fields: JobsetFields): Promise<JobsetRow> {
  const [row] = await db('jobsets').insert({ ...fields, project_id: projectId }).returning('*');
  return row as JobsetRow;
}

export async function updateJobset(db: Queryable, projectId: string, id: string, fields: JobsetFields): Promise<JobsetRow | undefined> {
  const [row] = await db('jobsets').where({ id, project_id: projectId }).update({ ...fields, updated_at: db.fn.now() }).returning('*');
  return row as JobsetRow | undefined;
}

export async function deleteJobset(db: Queryable, projectId: string, id: string): Promise<JobsetRow | undefined> {
  const [row] = await db('jobsets').where({ id, project_id: projectId }).delete().returning('*');
  return row as JobsetRow | undefined;
}

export async function listJobsetInputs(db: Queryable, jobsetId: string): Promise<JobsetInputRow[]> {
  return db('jobset_inputs').where({ jobset_id: jobsetId }).orderBy('name');
}

export async function insertJobsetInput(db: Queryable, jobsetId: string, fields: JobsetInputFields): Promise<JobsetInputRow> {
  const [row] = await db('jobset_inputs').insert({ ...fields, jobset_id: jobsetId }).returning('*');
  return row as JobsetInputRow;
}

export async function deleteJobsetInput(db: Queryable, jobsetId: string, inputId: string): Promise<boolean> {
  return (await db('jobset_inputs').where({ id: inputId, jobset_id: jobsetId }).delete()) > 0;
}
