import type { Queryable } from '../../lib/db';

/** A jobset with what an evaluation needs from its project. */
export interface JobsetToEvaluate {
  id: string;
  project_id: string;
  name: string;
  nix_expression: string;
  flake_mode: boolean;
  trigger_mode: string;
  branch: string | null;
  project_name: string;
  repository_url: string;
}

export async function findJobsetToEvaluate(db: Queryable, jobsetId: string): Promise<JobsetToEvaluate | undefined> {
  return db('jobsets as j').join('projects as p', 'p.id', 'j.project_id').where('j.id', jobsetId).first('j.*', 'p.name as project_name', 'p.repository_url');
}

export interface JobsetInputRow {
  name: string;
  input_type: string;
  value: string;
  revision: string | null;
}

export async function jobsetInputsOf(db: Queryable, jobsetId: string): Promise<JobsetInputRow[]> {
  return db('jobset_inputs').where({ jobset_id: jobsetId }).orderBy('name');
}

/** The jobset was checked now; `errorMessage` says why its inputs could not be fetched, or null. */
export async function markJobsetChecked(db: Queryable, jobsetId: string, errorMessage: string | null): Promise<void> {
  await db('jobsets').where({ id: jobsetId }).update({ last_checked_at: db.fn.now(), error_message: errorMessage });
}
