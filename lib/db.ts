import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';

// bigint columns (sizes) come back as numbers; they stay far below 2^53.
pg.types.setTypeParser(20, (v: string) => Number(v));

export type Db = Knex;

/** A database handle or a transaction: every per-table query module (api/queries, activities/records) runs on either. */
export type Queryable = Db | Knex.Transaction;

export function createDb(databaseUrl: string, pool: { min?: number; max?: number } = {}): Db {
  return knexFactory({
    client: 'pg',
    connection: databaseUrl,
    pool: { min: pool.min ?? 0, max: pool.max ?? 10 },
  });
}

export const migrationsDirectory = path.resolve(__dirname, '..', 'migrations');

/** Runs every pending migration; returns the names it applied. */
export async function migrateLatest(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ directory: migrationsDirectory, loadExtensions: ['.ts'] })) as [number, string[]];
  return applied;
}
