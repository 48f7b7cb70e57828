import fs from 'node:fs';
import path from 'node:path';
import type { Db } from './db';
import { gcRootStorePaths, recordProductRoots } from '../api/queries/gc-roots';

/** A root link's name: the store path's base name (`<hash>-<name>`), which is unique per path. */
const ROOT_NAME = /^[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+._?=-]+$/;
/** Serialises root updates across processes: a stale set must never delete a root a newer set added. */
const GC_ROOTS_LOCK = 0x52_47_43_52; // "RGCR"

export interface GcRootsSync {
  roots: string[];
  added: string[];
  removed: string[];
}

/**
 * Makes the roots dir hold exactly one symlink per store path that must survive garbage collection
 * (`<rootsDir>/<hash>-<name>` → `/nix/store/<hash>-<name>`), adding the missing and removing the rest.
 * The roots dir must lie inside the store's `gcroots` folder (default `/nix/var/nix/gcroots/ringmaster`)
 * for `nix-store --gc` to honour it. Runs under a PostgreSQL advisory lock.
 */
export async function syncGcRoots(db: Db, rootsDir: string): Promise<GcRootsSync> {
  return db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?)', [GC_ROOTS_LOCK]);
    const wanted = await gcRootStorePaths(trx as unknown as Db);
    fs.mkdirSync(rootsDir, { recursive: true });
    const byName = new Map(wanted.map((p) => [path.basename(p), p]));
    const present = new Map<string, string | null>();
    for (const entry of fs.readdirSync(rootsDir)) {
      if (!ROOT_NAME.test(entry)) continue; // not ours: leave it
      let target: string | null = null;
      try {
        target = fs.readlinkSync(path.join(rootsDir, entry));
      } catch {
        /* not a symlink */
      }
      present.set(entry, target);
    }
    const added: string[] = [];
    const removed: string[] = [];
    for (const [name, target] of present) {
      if (byName.get(name) === target) continue;
      fs.rmSync(path.join(rootsDir, name), { force: true });
      if (target) removed.push(target);
    }
    for (const [name, storePath] of byName) {
      if (present.get(name) === storePath) continue;
      linkRoot(rootsDir, storePath);
      added.push(storePath);
    }
    await recordProductRoots(trx as unknown as Db, new Map(wanted.map((p) => [p, path.join(rootsDir, path.basename(p))])));
    return { roots: wanted, added, removed: removed.filter((p) => !byName.has(path.basename(p))) };
  });
}

/**
 * Adds the roots that these outputs need, as `syncGcRoots` would add them, and records their products'
 * roots, without reading the rest of the roots folder or touching other products: what a serving round
 * does for its new outputs (issue 6), so a round costs what its own outputs cost, not what every kept
 * output does. Roots that are no longer wanted go with the next `syncGcRoots` (a keep, a channel's
 * promotion, `ringmaster gc` before it collects). Runs under the same advisory lock. Answers the roots it added.
 */
export async function addGcRoots(db: Db, rootsDir: string, outputs: string[]): Promise<string[]> {
  if (outputs.length === 0) return [];
  return db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?)', [GC_ROOTS_LOCK]);
    const wanted = await gcRootStorePaths(trx as unknown as Db, [...new Set(outputs)]);
    if (wanted.length === 0) return [];
    fs.mkdirSync(rootsDir, { recursive: true });
    const added: string[] = [];
    for (const storePath of wanted) {
      const link = path.join(rootsDir, path.basename(storePath));
      let target: string | null = null;
      try {
        target = fs.readlinkSync(link);
      } catch {
        /* missing, or not a symlink: made below */
      }
      if (target === storePath) continue;
      linkRoot(rootsDir, storePath);
      added.push(storePath);
    }
    await recordProductRoots(trx as unknown as Db, new Map(wanted.map((p) => [p, path.join(rootsDir, path.basename(p))])), { clearOthers: false });
    return added;
  });
}

/** Points `<rootsDir>/<hash>-<name>` at the store path, replacing what was there in one rename. */
function linkRoot(rootsDir: string, storePath: string): void {
  const link = path.join(rootsDir, path.basename(storePath));
  const temp = `${link}.tmp-${process.pid}`;
  fs.rmSync(temp, { force: true });
  fs.symlinkSync(storePath, temp);
  fs.renameSync(temp, link);
}
