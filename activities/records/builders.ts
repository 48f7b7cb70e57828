import type { Queryable } from '../../lib/db';

/** The columns of a remote builder the worker reads to dispatch and to connect. */
export interface RemoteBuilderRow {
  id: string;
  name: string;
  ssh_uri: string;
  ssh_key_file: string | null;
  ssh_private_key: string | null;
  public_host_key: string | null;
  remote_store: string | null;
  systems: string[];
  supported_features: string[];
  mandatory_features: string[];
  max_jobs: number;
  speed_factor: number | string;
  enabled: boolean;
  disabled_until: Date | null;
  consecutive_failures: number;
}

export async function listRemoteBuilders(db: Queryable): Promise<RemoteBuilderRow[]> {
  return db('remote_builders').select('*').orderBy('name');
}

/** How many remote builders are configured, and how many of them are enabled (one statement). */
export async function countRemoteBuilders(db: Queryable): Promise<{ all: number; enabled: number }> {
  const row: { all: string | number; enabled: string | number } | undefined = await db('remote_builders').first(db.raw('count(*) as "all"'), db.raw('count(*) filter (where enabled) as enabled'));
  return { all: Number(row?.all ?? 0), enabled: Number(row?.enabled ?? 0) };
}

/** Whether any remote builder is configured (else the worker's own Nix builds: the local fallback). */
export async function anyRemoteBuilder(db: Queryable): Promise<boolean> {
  return (await db('remote_builders').first('id')) !== undefined;
}

export async function findRemoteBuilder(db: Queryable, id: string): Promise<RemoteBuilderRow | undefined> {
  return db('remote_builders').where({ id }).first();
}

/** A success clears the builder's failure count and back-off. */
export async function recordBuilderSuccess(db: Queryable, id: string): Promise<void> {
  await db('remote_builders').where({ id }).update({ consecutive_failures: 0, disabled_until: null });
}

/** A failure counts, and backs the builder off until `disabledUntil`. */
export async function recordBuilderFailure(db: Queryable, id: string, failure: { consecutiveFailures: number; disabledUntil: Date; message: string }): Promise<void> {
  await db('remote_builders')
    .where({ id })
    .update({ consecutive_failures: failure.consecutiveFailures, disabled_until: failure.disabledUntil, last_failure: failure.message, updated_at: db.fn.now() });
}
