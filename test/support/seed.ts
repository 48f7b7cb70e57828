import crypto from 'node:crypto';
import type { Db } from '../../lib/db';

/**
 * Rows for tests that read the model directly: projects → jobsets → evaluations → builds.
 * Every helper fills the NOT NULL columns with unique defaults; pass fields to override any column.
 */

export type Row = Record<string, any>;

const unique = (prefix: string) => `${prefix}-${crypto.randomBytes(4).toString('hex')}`;
const NIX_BASE32 = '0123456789abcdfghijklmnpqrsvwxyz';

/** A plausible store path: /nix/store/<32 nix-base32 chars>-<name>. */
export function fakeStorePath(name: string): string {
  const bytes = crypto.randomBytes(32);
  let hash = '';
  for (let i = 0; i < 32; i++) hash += NIX_BASE32[bytes[i] % 32];
  return `/nix/store/${hash}-${name}`;
}

export async function seedProject(db: Db, fields: Row = {}): Promise<Row> {
  const [row] = await db('projects')
    .insert({ name: unique('project'), repository_url: 'file:///srv/repo', ...fields })
    .returning('*');
  return row;
}

export async function seedJobset(db: Db, projectId: string, fields: Row = {}): Promise<Row> {
  const [row] = await db('jobsets')
    .insert({ project_id: projectId, name: unique('jobset'), nix_expression: 'release.nix', ...fields })
    .returning('*');
  return row;
}

export async function seedEvaluation(db: Db, jobsetId: string, fields: Row = {}): Promise<Row> {
  const [row] = await db('evaluations')
    .insert({ jobset_id: jobsetId, status: 'completed', commit_hash: crypto.randomBytes(20).toString('hex'), trigger_kind: 'manual', ...fields })
    .returning('*');
  return row;
}

/** An evaluation of a new jobset of a new project: the scaffold builds are seeded into. */
export async function seedEvaluationOfNewJobset(db: Db): Promise<Row> {
  const project = await seedProject(db);
  const jobset = await seedJobset(db, project.id);
  return seedEvaluation(db, jobset.id);
}

export interface SeedBuildFields extends Row {
  /** The evaluation row (or its id) the build belongs to; jobset_id and project_id follow from it. */
  evaluation: Row | string;
}

export async function seedBuild(db: Db, { evaluation, ...fields }: SeedBuildFields): Promise<Row> {
  const evaluationRow: Row = typeof evaluation === 'string' ? await db('evaluations').where({ id: evaluation }).first() : evaluation;
  if (!evaluationRow) throw new Error(`seedBuild: no evaluation ${String(evaluation)}`);
  const jobset = await db('jobsets').where({ id: evaluationRow.jobset_id }).first();
  const jobName = (fields.job_name as string | undefined) ?? unique('job');
  const row: Row = {
    evaluation_id: evaluationRow.id,
    jobset_id: evaluationRow.jobset_id,
    project_id: jobset.project_id,
    job_name: jobName,
    drv_path: fakeStorePath(`${jobName}.drv`),
    system: 'x86_64-linux',
    ...fields,
  };
  if (row.outputs !== undefined && typeof row.outputs !== 'string') row.outputs = JSON.stringify(row.outputs);
  const [inserted] = await db('builds').insert(row).returning('*');
  return inserted;
}
