import type { Queryable } from '../../lib/db';

/** A succeeded build whose outputs are still to be served (closure size, GC roots, binary cache). */
export interface BuildOutputsToServe {
  buildId: string;
  outputs: string[];
  attempts: number;
}

/** Queues a succeeded build's outputs to be served; queuing it again (a finish recorded again) changes nothing. */
export async function queueBuildOutputsToServe(db: Queryable, buildId: string): Promise<void> {
  await db('build_outputs_to_serve').insert({ build_id: buildId }).onConflict('build_id').ignore();
}

/**
 * Whether the server must be woken for this build, read after its row was committed: when it is the
 * first of the queue (oldest, then lowest ID), it found the queue empty or holding only builds queued as
 * concurrently. Any later build finds a queue the server has not emptied yet, and the server takes it on
 * its next read (it deletes a round's rows before it reads the queue again, and stops only on an empty
 * read). Also when the first row has waited over 10 minutes: a server that is gone is started again.
 */
export async function mustWakeOutputsServer(db: Queryable, buildId: string): Promise<boolean> {
  const first: { build_id: string; stale: boolean } | undefined = await db('build_outputs_to_serve')
    .orderBy([{ column: 'queued_at' }, { column: 'build_id' }])
    .first('build_id', db.raw("queued_at < now() - interval '10 minutes' as stale"));
  return first !== undefined && (first.build_id === buildId || first.stale);
}

/** Up to `limit` queued builds, oldest first, with their output paths. */
export async function queuedBuildOutputs(db: Queryable, limit: number): Promise<BuildOutputsToServe[]> {
  const rows: Array<{ build_id: string; attempts: number; paths: string[] | null }> = await db('build_outputs_to_serve as q')
    .leftJoin('build_outputs as o', 'o.build_id', 'q.build_id')
    .groupBy('q.build_id', 'q.attempts', 'q.queued_at')
    .orderBy([{ column: 'q.queued_at' }, { column: 'q.build_id' }])
    .limit(limit)
    .select('q.build_id', 'q.attempts', db.raw('array_remove(array_agg(o.path order by o.name), null) as paths'));
  return rows.map((r) => ({ buildId: r.build_id, outputs: r.paths ?? [], attempts: r.attempts }));
}

/** Records each build's closure size (bytes). */
export async function recordClosureSizes(db: Queryable, sizes: Array<{ buildId: string; closureSize: number }>): Promise<void> {
  if (sizes.length === 0) return;
  await db.raw(
    `update builds b set closure_size = v.size
       from (select unnest(?::uuid[]) as id, unnest(?::bigint[]) as size) v
      where b.id = v.id`,
    [sizes.map((s) => s.buildId), sizes.map((s) => s.closureSize)],
  );
}

/** The builds whose outputs are served: out of the queue. */
export async function dropServedBuildOutputs(db: Queryable, buildIds: string[]): Promise<void> {
  if (buildIds.length === 0) return;
  await db('build_outputs_to_serve').whereIn('build_id', buildIds).delete();
}

/** A round failed to publish these builds' outputs: counted, for them to be tried again later. */
export async function countFailedServing(db: Queryable, buildIds: string[]): Promise<void> {
  if (buildIds.length === 0) return;
  await db('build_outputs_to_serve').whereIn('build_id', buildIds).increment('attempts', 1);
}
