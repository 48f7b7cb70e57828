import type { RingmasterConfig } from '../lib/config';
import { migrateLatest } from '../lib/db';
import type { Role } from '../api/route';
import { createApiKey } from '../api/queries/api-keys';
import { writeAuditEntry } from '../api/queries/audit-log';
import { openDatabase } from './database';

/** `ringmaster api-key create`: a new API key, written to the audit log, printed once as the last line. */
export async function createApiKeyCommand(config: RingmasterConfig, name: string, role: Role): Promise<void> {
  const { db, pg } = await openDatabase(config, () => {});
  try {
    await migrateLatest(db);
    const key = await createApiKey(db, { name, role });
    await writeAuditEntry(db, { actorKind: 'cli', actorId: null, actorName: process.env.USER ?? 'cli', action: 'api-key create', targetKind: 'api_key', targetId: key.id, details: { name, role }, remoteAddr: null });
    console.log(`Created API key "${name}" (${role}), id ${key.id}. It is shown only once:`);
    console.log(key.key);
  } finally {
    await db.destroy();
    if (pg?.owned) await pg.stop();
  }
}
