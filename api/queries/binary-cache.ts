import type { Db } from '../../lib/db';
import type { CachedPathInfo } from '../../lib/binary-cache/narinfo';

/** A row of binary_cache_paths. */
interface BinaryCachePathRow {
  store_path: string;
  hash_part: string;
  nar_hash: string;
  nar_size: number;
  file_hash: string;
  file_size: number;
  compression: string;
  references: string[];
  deriver: string | null;
  ca: string | null;
  build_id: string | null;
}

function toInfo(row: BinaryCachePathRow): CachedPathInfo {
  return {
    storePath: row.store_path,
    narHash: row.nar_hash,
    narSize: Number(row.nar_size),
    fileHash: row.file_hash,
    fileSize: Number(row.file_size),
    compression: row.compression as CachedPathInfo['compression'],
    references: row.references,
    deriver: row.deriver,
    ca: row.ca,
  };
}

/** The published path whose store path has this 32-character hash part. */
export async function findCachedPathByHashPart(db: Db, hashPart: string): Promise<CachedPathInfo | undefined> {
  const row = (await db('binary_cache_paths').where({ hash_part: hashPart }).first()) as BinaryCachePathRow | undefined;
  return row ? toInfo(row) : undefined;
}

/** Which of `storePaths` are already published. */
export async function publishedStorePaths(db: Db, storePaths: string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (let i = 0; i < storePaths.length; i += 1000) {
    const rows = (await db('binary_cache_paths').select('store_path').whereIn('store_path', storePaths.slice(i, i + 1000))) as { store_path: string }[];
    for (const r of rows) found.add(r.store_path);
  }
  return found;
}

/**
 * Records published paths in one statement (all visible at once); a concurrent publisher of the same
 * path wins quietly.
 */
export async function insertCachedPaths(db: Db, infos: Array<CachedPathInfo & { hashPart: string; buildId: string | null }>): Promise<void> {
  if (infos.length === 0) return;
  await db('binary_cache_paths')
    .insert(
      infos.map((info) => ({
        store_path: info.storePath,
        hash_part: info.hashPart,
        nar_hash: info.narHash,
        nar_size: info.narSize,
        file_hash: info.fileHash,
        file_size: info.fileSize,
        compression: info.compression,
        references: info.references,
        deriver: info.deriver,
        ca: info.ca,
        build_id: info.buildId,
      })),
    )
    .onConflict('store_path')
    .ignore();
}

/** Every published path with its file hash, in pages, for pruning after a garbage collection. */
export async function allCachedPaths(db: Db): Promise<{ storePath: string; fileHash: string; compression: string }[]> {
  const rows = (await db('binary_cache_paths').select('store_path', 'file_hash', 'compression').orderBy('store_path')) as BinaryCachePathRow[];
  return rows.map((r) => ({ storePath: r.store_path, fileHash: r.file_hash, compression: r.compression }));
}

/** Forgets published paths; answers the file hashes that no remaining row uses (their files can go). */
export async function deleteCachedPaths(db: Db, storePaths: string[]): Promise<string[]> {
  if (storePaths.length === 0) return [];
  return db.transaction(async (trx) => {
    const deleted = (await trx('binary_cache_paths').whereIn('store_path', storePaths).delete().returning('file_hash')) as { file_hash: string }[];
    const hashes = [...new Set(deleted.map((r) => r.file_hash))];
    if (hashes.length === 0) return [];
    const still = new Set(((await trx('binary_cache_paths').select('file_hash').whereIn('file_hash', hashes)) as { file_hash: string }[]).map((r) => r.file_hash));
    return hashes.filter((h) => !still.has(h));
  });
}
