import fs from 'node:fs';
import path from 'node:path';
import type { RingmasterConfig } from '../lib/config';
import { createDb, type Db } from '../lib/db';
import { ensureDatabase, startEmbeddedPostgres, type RunningPostgres } from '../lib/embedded-postgres';

export const EMBEDDED_DATABASE = 'ringmaster';

export function embeddedPostgresDir(config: RingmasterConfig): string {
  return path.join(config.dataDir, 'postgres');
}

export function embeddedPostgresPort(): number {
  return Number(process.env.RINGMASTER_PG_PORT || 54329);
}

/** DATABASE_URL, or the embedded PostgreSQL in the data folder (reused if `npm start` already runs it). */
export async function openDatabase(config: RingmasterConfig, log: (l: string) => void): Promise<{ db: Db; url: string; pg?: RunningPostgres }> {
  if (config.databaseUrl) return { db: createDb(config.databaseUrl, { max: config.dbPoolMax }), url: config.databaseUrl };
  fs.mkdirSync(config.dataDir, { recursive: true });
  const pg = await startEmbeddedPostgres(embeddedPostgresDir(config), embeddedPostgresPort(), (l) => log(`[postgres] ${l}`));
  const url = await ensureDatabase(pg.baseUrl, EMBEDDED_DATABASE);
  return { db: createDb(url, { max: config.dbPoolMax }), url, pg };
}
