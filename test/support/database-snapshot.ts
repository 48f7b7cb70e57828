import type { Db } from '../../lib/db';

/**
 * Every table of the public schema with its row count and an md5 over its rows, to show that a call
 * changed nothing. Columns named in `ignore` (table → columns) are left out of the checksum.
 */
export type DatabaseSnapshot = Record<string, { rows: number; md5: string }>;

export async function snapshotDatabase(db: Db, ignore: Record<string, string[]> = {}): Promise<DatabaseSnapshot> {
  const tables: Array<{ table_name: string }> = (
    await db.raw("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name")
  ).rows;
  const parts = tables.map(({ table_name: name }) => {
    const dropped = (ignore[name] ?? []).map((c) => ` - '${c.replace(/'/g, "''")}'`).join('');
    const row = `(to_jsonb(t)${dropped})::text`;
    return `SELECT '${name}' AS name, count(*)::int AS rows, md5(coalesce(string_agg(${row}, '' ORDER BY ${row}), '')) AS md5 FROM "${name}" t`;
  });
  const result: Array<{ name: string; rows: number; md5: string }> = (await db.raw(parts.join(' UNION ALL '))).rows;
  return Object.fromEntries(result.map((r) => [r.name, { rows: r.rows, md5: r.md5 }]));
}
