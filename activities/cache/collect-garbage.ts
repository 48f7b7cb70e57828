import fs from 'node:fs';
import type { Db } from '../../lib/db';
import { syncGcRoots } from '../../lib/gc-roots';
import { narFilePath } from '../../lib/binary-cache/nar-files';
import { allCachedPaths, deleteCachedPaths } from '../../api/queries/binary-cache';
import { chunkPaths, NixCommandError, runNixStore, storePathLines } from '../realise/nix-process';

/** `--store X` when a store other than the default one is meant. */
function storeArgs(store: string | undefined): string[] {
  return store ? ['--store', store] : [];
}

/**
 * Forgets the published paths the store no longer holds (collected by a garbage collection): their rows go,
 * and so do the NAR files no remaining row uses. The cache then answers 404 for them.
 */
export async function pruneBinaryCache(deps: { db: Db; dataDir: string }, opts: { store?: string } = {}): Promise<{ pruned: string[] }> {
  const published = await allCachedPaths(deps.db);
  const invalid = new Set<string>();
  for (const chunk of chunkPaths(published.map((p) => p.storePath))) {
    for (const p of storePathLines(await runNixStore([...storeArgs(opts.store), '--check-validity', '--print-invalid', ...chunk]))) invalid.add(p);
  }
  const pruned = published.filter((p) => invalid.has(p.storePath));
  const unusedFiles = await deleteCachedPaths(deps.db, pruned.map((p) => p.storePath));
  const compressionOf = new Map(pruned.map((p) => [p.fileHash, p.compression]));
  for (const fileHash of unusedFiles) fs.rmSync(narFilePath(deps.dataDir, fileHash, compressionOf.get(fileHash) ?? 'xz'), { force: true });
  return { pruned: pruned.map((p) => p.storePath) };
}

/**
 * Ringmaster's garbage collection: brings the GC roots up to date, runs `nix-store --gc` on the store
 * (the default one, or `store`, whose gcroots folder must hold `gcRootsDir`), then prunes the binary
 * cache of what was collected.
 */
export async function collectGarbage(
  deps: { db: Db; dataDir: string; gcRootsDir: string },
  opts: { store?: string } = {},
): Promise<{ roots: number; collectorOutput: string; pruned: string[] }> {
  const { roots } = await syncGcRoots(deps.db, deps.gcRootsDir);
  let collectorOutput: string;
  try {
    collectorOutput = await runNixStore([...storeArgs(opts.store), '--gc']);
  } catch (err) {
    if (err instanceof NixCommandError) throw new Error(`nix-store --gc failed: ${err.message}`);
    throw err;
  }
  const { pruned } = await pruneBinaryCache(deps, opts);
  return { roots: roots.length, collectorOutput, pruned };
}
