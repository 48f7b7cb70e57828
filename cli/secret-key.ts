import type { RingmasterConfig } from '../lib/config';
import { migrateLatest, type Db } from '../lib/db';
import { secretBoxFor, secretKeyFileOf } from '../lib/secret-box';
import { rotateSecretKey, sealPlainStoredSecrets } from '../lib/stored-secrets';
import { openDatabase } from './database';

/** After migrations: seal the secrets still stored in plaintext (rows from before sealing); says how many. */
export async function sealStoredSecretsStep(db: Db, config: RingmasterConfig, log: (line: string) => void): Promise<void> {
  const sealed = await sealPlainStoredSecrets(db, secretBoxFor(secretKeyFileOf(config)));
  const counts = Object.entries(sealed).map(([column, n]) => `${n} in ${column}`);
  if (counts.length) log(`sealed stored secrets that were in plaintext with the server key: ${counts.join(', ')}`);
}

/** `ringmaster secret-key rotate`: a new server key, every sealed secret re-sealed with it. */
export async function secretKeyCommand(config: RingmasterConfig, args: string[]): Promise<void> {
  if (args[0] !== 'rotate') throw new Error('usage: ringmaster secret-key rotate');
  const keyFile = secretKeyFileOf(config);
  const { db, pg } = await openDatabase(config, () => {});
  try {
    await migrateLatest(db);
    const { resealed, finishedInterrupted } = await rotateSecretKey(db, keyFile);
    if (finishedInterrupted) {
      console.log(`finished an interrupted rotation: ${keyFile} now holds the new key`);
    } else {
      const counts = Object.entries(resealed).map(([column, n]) => `${n} in ${column}`).join(', ');
      console.log(`rotated the server key in ${keyFile} (the previous key is kept in ${keyFile}.previous); re-sealed ${counts}`);
    }
    console.log('restart every Ringmaster process (API and workers) so that they load the new key');
  } finally {
    await db.destroy();
    if (pg?.owned) await pg.stop();
  }
}
