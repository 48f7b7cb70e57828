import crypto from 'node:crypto';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import type { BuildStatus, EvaluationStatus } from './statuses';
import { DEFAULT_DB_POOL_MAX } from './config';

// bigint columns (sizes) come back as numbers; they stay far below 2^53.
pg.types.setTypeParser(20, (v: string) => Number(v));

export type Db = Knex;

/** A database handle or a transaction: every per-table query module (api/queries, activities/records) runs on either. */
export type Queryable = Db | Knex.Transaction;

const preparedNames = new Map<string, string>();

/**
 * The name under which a statement is prepared on each connection (pg's `name`, passed with knex's
 * `.options()`): PostgreSQL then parses it once per connection and may reuse its plan, where an unnamed
 * statement is parsed and planned on every call. Derived from the text, since one name must always
 * carry the same text; for the hot statements whose planning costs more than running them.
 */
export function preparedStatement(prefix: string, sql: string): { name: string } {
  let name = preparedNames.get(sql);
  if (name === undefined) preparedNames.set(sql, (name = `${prefix}_${crypto.createHash('sha1').update(sql).digest('hex').slice(0, 16)}`));
  return { name };
}

export function createDb(databaseUrl: string, pool: { min?: number; max?: number } = {}): Db {
  return knexFactory({
    client: 'pg',
    connection: databaseUrl,
    pool: { min: pool.min ?? 0, max: pool.max ?? DEFAULT_DB_POOL_MAX },
  });
}

export const migrationsDirectory = path.resolve(__dirname, '..', 'migrations');

/** Runs every pending migration; returns the names it applied. */
export async function migrateLatest(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ directory: migrationsDirectory, loadExtensions: ['.ts'] })) as [number, string[]];
  return applied;
}

// ---- rows shared by the API's queries and the worker's records ----

/** A row of builds. */
export interface BuildRow {
  id: string;
  evaluation_id: string;
  jobset_id: string;
  project_id: string;
  job_name: string;
  drv_path: string;
  system: string;
  status: BuildStatus;
  priority: number;
  outputs: Record<string, string>;
  build_output_path: string | null;
  log_path: string | null;
  error_message: string | null;
  is_aggregate: boolean;
  retry_count: number;
  max_retries: number;
  builder_id: string | null;
  agent_machine_id: string | null;
  keep: boolean;
  signed: boolean;
  is_fod: boolean;
  meta_description: string | null;
  meta_license: string | null;
  meta_homepage: string | null;
  meta_maintainers: string | null;
  meta_timeout: number | null;
  meta_max_silent: number | null;
  required_features: string[];
  closure_size: number | null;
  workflow_id: string | null;
  started_at: Date | null;
  completed_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** A row of evaluations. */
export interface EvaluationRow {
  id: string;
  jobset_id: string;
  commit_hash: string | null;
  branch: string | null;
  evaluation_time: Date | null;
  status: EvaluationStatus;
  error_message: string | null;
  inputs_hash: string | null;
  trigger_kind: string;
  hidden: boolean;
  source_scope: string | null;
  superseded_by: string | null;
  workflow_id: string | null;
  nr_jobs: number | null;
  nr_errors: number | null;
  started_at: Date | null;
  completed_at: Date | null;
  /** Set when a forge's pull/merge request webhook triggered it: the request's number, head branch and base branch. */
  pr_number: number | null;
  pr_head: string | null;
  pr_base: string | null;
  created_at: Date;
  updated_at: Date;
}
