import type { RingmasterConfig } from '../lib/config';
import { migrateLatest } from '../lib/db';
import { collectGarbage } from '../activities/cache/collect-garbage';
import { openDatabase } from './database';

/** `ringmaster gc [--store STORE]`: fresh GC roots, `nix-store --gc`, then the cache pruned of what went. */
export async function gcCommand(config: RingmasterConfig, store: string | undefined): Promise<void> {
  const { db, pg } = await openDatabase(config, () => {});
  try {
    await migrateLatest(db);
    const result = await collectGarbage({ db, dataDir: config.dataDir, gcRootsDir: config.gcRootsDir }, { store });
    if (result.collectorOutput.trim()) console.log(result.collectorOutput.trim());
    console.log(`${result.roots} GC roots in ${config.gcRootsDir}; ${result.pruned.length} collected paths dropped from the binary cache`);
  } finally {
    await db.destroy();
    if (pg?.owned) await pg.stop();
  }
}
