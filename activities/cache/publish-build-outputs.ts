import type { Db } from '../../lib/db';
import { localStore } from '../nix/store-serve';
import { storePathHashPart } from '../../lib/binary-cache/narinfo';
import { insertCachedPath, publishedStorePaths } from '../../api/queries/binary-cache';
import { compressNar } from './compress-nar';
import { storePathInfos } from './store-path-info';

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
  for (const storePath of ordered) {
    const info = infos.get(storePath);
    if (!info) throw new Error(`the store did not describe ${storePath}`);
    const file = await compressNar(deps.dataDir, storePath, info.narSize);
    if (file.narHash !== info.narHash || file.narSize !== info.narSize) {
      throw new Error(`${storePath}: its NAR hashes to ${file.narHash} (${file.narSize} bytes) but the store records ${info.narHash} (${info.narSize} bytes)`);
    }
    await insertCachedPath(deps.db, {
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
  }
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

/** Orders paths so that each comes after every path it refers to (self-references aside). */
export function dependenciesFirst(paths: string[], infos: Map<string, { references: string[] }>): string[] {
  const wanted = new Set(paths);
  const ordered: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (root: string) => {
    // Iterative depth-first walk: closures can be deep.
    const stack: Array<{ path: string; refs: string[] }> = [{ path: root, refs: [...(infos.get(root)?.references ?? [])] }];
    state.set(root, 'visiting');
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      const next = top.refs.pop();
      if (next === undefined) {
        stack.pop();
        state.set(top.path, 'done');
        ordered.push(top.path);
      } else if (wanted.has(next) && !state.has(next)) {
        state.set(next, 'visiting');
        stack.push({ path: next, refs: [...(infos.get(next)?.references ?? [])] });
      }
    }
  };
  for (const p of paths) if (!state.has(p)) visit(p);
  return ordered;
}
