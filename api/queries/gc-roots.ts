import type { Db } from '../../lib/db';
import { pageRows, type PageOfRows, type PageRequest } from './page';
import type { BuildProductRow, BuildRow } from './builds';

/**
 * The store paths Ringmaster keeps alive: the outputs of
 * - builds that are kept (`PUT /builds/{id}/keep/1`);
 * - each jobset's latest `keep_nr` evaluations that have builds (Hydra's keepnr);
 * - every channel's current evaluation.
 */
export async function gcRootStorePaths(db: Db, among?: string[]): Promise<string[]> {
  // With `among`, only those of these paths (a serving round's outputs), ranking only their jobsets' evaluations.
  const onlyAmong = among !== undefined;
  const rows = (await db.raw(
    `select distinct bo.path
       from build_outputs bo
       join builds b on b.id = bo.build_id
      where (not ?::boolean or bo.path = any(?))
        and (b.keep
         or b.evaluation_id in (
              select ranked.id from (
                select e.id, j.keep_nr,
                       row_number() over (partition by e.jobset_id order by e.created_at desc, e.id desc) as position
                  from evaluations e
                  join jobsets j on j.id = e.jobset_id
                 where exists (select 1 from builds x where x.evaluation_id = e.id)
                   and (not ?::boolean or e.jobset_id in (
                         select b2.jobset_id from build_outputs bo2 join builds b2 on b2.id = bo2.build_id where bo2.path = any(?)))
              ) ranked
             where ranked.position <= ranked.keep_nr)
         or b.evaluation_id in (select c.current_evaluation_id from channels c where c.current_evaluation_id is not null))
      order by bo.path`,
    [onlyAmong, among ?? [], onlyAmong, among ?? []],
  )).rows as { path: string }[];
  return rows.map((r) => r.path);
}

/**
 * Records on each product which root protects it (the root of the output that holds it), and clears
 * the column on products no root protects any more; with `clearOthers: false` (roots only added), only
 * the products of these outputs are touched. `rootOf` maps an output path to its root link.
 */
export async function recordProductRoots(db: Db, rootOf: Map<string, string>, { clearOthers = true }: { clearOthers?: boolean } = {}): Promise<void> {
  const outputs = [...rootOf.keys()];
  await db.transaction(async (trx) => {
    if (clearOthers) await trx('build_products').whereNotNull('gc_root_path').update({ gc_root_path: null });
    for (let i = 0; i < outputs.length; i += 500) {
      const chunk = outputs.slice(i, i + 500);
      const products = (await trx('build_products as bp')
        .join('build_outputs as bo', 'bo.build_id', 'bp.build_id')
        .whereIn('bo.path', chunk)
        .where((q) => q.whereRaw('bp.path = bo.path').orWhereRaw("bp.path like bo.path || '/%'"))
        .select('bp.id', 'bo.path as output')) as { id: string; output: string }[];
      for (const p of products) await trx('build_products').where({ id: p.id }).update({ gc_root_path: rootOf.get(p.output) ?? null });
    }
  });
}

/** One page of the products of kept builds, newest first. */
export async function pinnedBuildProducts(db: Db, page: PageRequest): Promise<PageOfRows<BuildProductRow>> {
  const base = db('build_products as bp').join('builds as b', 'b.id', 'bp.build_id').where('b.keep', true);
  return pageRows<BuildProductRow>(base, page, [{ column: 'bp.created_at', order: 'desc' }, { column: 'bp.id', order: 'asc' }], 'bp.*');
}

/** Clears a build's keep flag; undefined when there is no such build. */
export async function unpinBuild(db: Db, buildId: string): Promise<BuildRow | undefined> {
  const [row] = (await db('builds').where({ id: buildId }).update({ keep: false, updated_at: db.fn.now() }).returning('*')) as BuildRow[];
  return row;
}
