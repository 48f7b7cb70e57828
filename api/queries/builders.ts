import type { Db } from '../../lib/db';

/** A row of remote_builders, secrets included: only the worker and these queries see it whole. */
export interface BuilderRow {
  id: string;
  name: string;
  ssh_uri: string;
  systems: string[];
  max_jobs: number;
  speed_factor: number;
  supported_features: string[];
  mandatory_features: string[];
  enabled: boolean;
  public_host_key: string | null;
  ssh_key_file: string | null;
  ssh_private_key: string | null;
  remote_store: string | null;
  consecutive_failures: number;
  disabled_until: Date | null;
  last_failure: string | null;
  cpu_cores: number | null;
  /** The last check (a trivial build on the builder): passed, failed, running, or null when never checked. */
  check_status: 'passed' | 'failed' | 'running' | null;
  check_error: string | null;
  checked_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** The last check of a builder, as the API shows it. */
export interface BuilderCheckView {
  status: 'passed' | 'failed' | 'running';
  /** Nix's error (or the connection's) when the check failed. */
  error: string | null;
  checked_at: Date | null;
}

/** What the API answers for a builder: the private key replaced by `has_ssh_private_key`, the check columns by `check`. */
export type BuilderView = Omit<BuilderRow, 'ssh_private_key' | 'check_status' | 'check_error' | 'checked_at'> & {
  has_ssh_private_key: boolean;
  check: BuilderCheckView | null;
};

export interface BuilderFields {
  name?: string;
  ssh_uri?: string;
  systems?: string[];
  max_jobs?: number;
  speed_factor?: number;
  supported_features?: string[];
  mandatory_features?: string[];
  enabled?: boolean;
  public_host_key?: string | null;
  ssh_key_file?: string | null;
  ssh_private_key?: string | null;
  remote_store?: string | null;
  consecutive_failures?: number;
  disabled_until?: string | null;
  last_failure?: string | null;
  cpu_cores?: number | null;
}

export function builderView(row: BuilderRow): BuilderView {
  const { ssh_private_key, check_status, check_error, checked_at, ...rest } = row;
  return {
    ...rest,
    has_ssh_private_key: typeof ssh_private_key === 'string' && ssh_private_key.length > 0,
    check: check_status ? { status: check_status, error: check_error, checked_at } : null,
  };
}

export async function listBuilders(db: Db): Promise<BuilderRow[]> {
  return db('remote_builders').select('*').orderBy([{ column: 'name', order: 'asc' }]);
}

/**
 * The builders a step may be sent to now: enabled, and not in a failure back-off
 * (disabled_until unset or past). Rows include the SSH private key.
 */
export async function listEnabledBuilders(db: Db): Promise<BuilderRow[]> {
  return db('remote_builders')
    .select('*')
    .where('enabled', true)
    .andWhere((q) => q.whereNull('disabled_until').orWhere('disabled_until', '<=', db.fn.now()))
    .orderBy([{ column: 'speed_factor', order: 'desc' }, { column: 'name', order: 'asc' }]);
}

export async function findBuilder(db: Db, id: string): Promise<BuilderRow | undefined> {
  return db('remote_builders').where({ id }).first();
}

export async function insertBuilder(db: Db, fields: BuilderFields): Promise<BuilderRow> {
  const [row] = await db('remote_builders').insert(fields).returning('*');
  return row as BuilderRow;
}

/** Fields that change how the builder is reached or what it builds: a check made before such a change no longer tells. */
const CHECKED_FIELDS: ReadonlyArray<keyof BuilderFields> = ['ssh_uri', 'systems', 'public_host_key', 'ssh_key_file', 'ssh_private_key', 'remote_store'];

export async function updateBuilder(db: Db, id: string, fields: BuilderFields): Promise<BuilderRow | undefined> {
  const staleCheck = CHECKED_FIELDS.some((f) => fields[f] !== undefined) ? { check_status: null, check_error: null, checked_at: null } : {};
  const [row] = await db('remote_builders').where({ id }).update({ ...fields, ...staleCheck, updated_at: db.fn.now() }).returning('*');
  return row as BuilderRow | undefined;
}

/** Records a check that could not run at all (e.g. no worker answered), as a failed check with the reason. */
export async function recordBuilderCheckFailure(db: Db, id: string, error: string): Promise<void> {
  await db('remote_builders').where({ id }).update({ check_status: 'failed', check_error: error, checked_at: db.fn.now() });
}

export async function deleteBuilder(db: Db, id: string): Promise<boolean> {
  return (await db('remote_builders').where({ id }).delete()) > 0;
}

/** A builder agent's session (builder_sessions), as COMPAT.md's BuilderSession. */
export interface BuilderSessionRow {
  machine_id: string;
  name: string;
  hostname: string | null;
  systems: string[];
  supported_features: string[];
  mandatory_features: string[];
  speed_factor: number;
  cpu_count: number | null;
  max_jobs: number;
  current_jobs: number;
  last_seen: Date | null;
  load1: number | null;
  load5: number | null;
  load15: number | null;
  mem_total: number | null;
  mem_used: number | null;
  store_free: number | null;
  connected: boolean;
  builds_succeeded: number;
  builds_failed: number;
  consecutive_failures: number;
  disabled_until: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** An agent counts as connected when it says so and was heard from within this window. */
export const CONNECTED_WITHIN_SECONDS = 120;

export async function listBuilderSessions(db: Db): Promise<BuilderSessionRow[]> {
  return db('builder_sessions').select('*').orderBy([{ column: 'name', order: 'asc' }, { column: 'machine_id', order: 'asc' }]);
}

export async function listConnectedBuilderSessions(db: Db): Promise<BuilderSessionRow[]> {
  return db('builder_sessions')
    .select('*')
    .where('connected', true)
    .andWhere('last_seen', '>=', db.raw(`now() - interval '${CONNECTED_WITHIN_SECONDS} seconds'`))
    .orderBy([{ column: 'name', order: 'asc' }, { column: 'machine_id', order: 'asc' }]);
}

export async function findBuilderSession(db: Db, machineId: string): Promise<BuilderSessionRow | undefined> {
  return db('builder_sessions').where({ machine_id: machineId }).first();
}
