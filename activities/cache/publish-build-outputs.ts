import type { Db } from '../../lib/db';
import { localStore } from '../nix/store-serve';
import { storePathHashPart } from '../../lib/binary-cache/narinfo';
import { insertCachedPaths, publishedStorePaths } from '../../api/queries/binary-cache';
import { compressNar } from './compress-nar';
import { storePathInfos } from './store-path-info';
import { dependenciesFirst } from '../nix/dependencies-first';

/** Published paths recorded per statement: a round of small builds' outputs is one statement. */
const PUBLISH_ROWS_AT_ONCE = 200;

/**
 * Puts a finished build's outputs, with their whole closures, into the binary cache: every path of the
 * closure not yet published is dumped and compressed once, its file stored under the data folder and
 * its row written. Dependencies are published before what refers to them, so a client never reads a
 * narinfo whose references the cache lacks. Answers the paths it published now.
 */
export async function publishBuildOutputs(deps: { db: Db; dataDir: string }, input: { buildId: string | null; outputs: string[] }): Promise<{ published: string[] }> {
  return publishOutputsOfBuilds(deps, [input]);
}

/**
 * Publishes the outputs of several builds at once (one closure question and one path-info question over all
 * of them, as `publishBuildOutputs` does for one). A path is recorded as published for the first build
 * whose outputs' closure holds it.
 */
export async function publishOutputsOfBuilds(deps: { db: Db; dataDir: string }, builds: Array<{ buildId: string | null; outputs: string[] }>): Promise<{ published: string[] }> {
  const closure = await localStore.closure([...new Set(builds.flatMap((b) => b.outputs))]);
  const already = await publishedStorePaths(deps.db, closure);
  const missing = closure.filter((p) => !already.has(p));
  if (missing.length === 0) return { published: [] };
  const infos = await storePathInfos(missing);
  const ordered = dependenciesFirst(missing, infos);
  const buildOf = owningBuilds(builds, ordered, infos);
  // Rows go in dependency order, PUBLISH_ROWS_AT_ONCE to a statement, each statement's rows visible together.
  const rows: Parameters<typeof insertCachedPaths>[1] = [];
  const flush = async () => insertCachedPaths(deps.db, rows.splice(0));
  try {
    for (const storePath of ordered) {
      const info = infos.get(storePath);
      if (!info) throw new Error(`the store did not describe ${storePath}`);
      const file = await compressNar(deps.dataDir, storePath, info.narSize);
      if (file.narHash !== info.narHash || file.narSize !== info.narSize) {
        throw new Error(`${storePath}: its NAR hashes to ${file.narHash} (${file.narSize} bytes) but the store records ${info.narHash} (${info.narSize} bytes)`);
      }
      rows.push({
        storePath,
        hashPart: storePathHashPart(storePath),
        narHash: info.narHash,
        narSize: info.narSize,
        fileHash: file.fileHash,
        fileSize: file.fileSize,
        compression: file.compression,
        references: info.references,
        deriver: info.deriver,
        ca: info.ca,
        buildId: buildOf.get(storePath) ?? null,
      });
      if (rows.length >= PUBLISH_ROWS_AT_ONCE) await flush();
    }
  } catch (err) {
    // What was compressed before the failure is still recorded (its dependencies are among it).
    await flush().catch(() => undefined);
    throw err;
  }
  await flush();
  return { published: missing };
}

/** For each path (dependencies first), the first build whose outputs' closure holds it: referrers pass their build down. */
function owningBuilds(builds: Array<{ buildId: string | null; outputs: string[] }>, ordered: string[], infos: Map<string, { references: string[] }>): Map<string, string | null> {
  const owner = new Map<string, string | null>();
  for (const b of builds) for (const o of b.outputs) if (!owner.has(o)) owner.set(o, b.buildId);
  for (let i = ordered.length - 1; i >= 0; i--) {
    const from = owner.get(ordered[i]) ?? null;
    for (const ref of infos.get(ordered[i])?.references ?? []) if (!owner.has(ref)) owner.set(ref, from);
  }
  return owner;
}
