import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Db } from './db';
import { secretBoxFromKey, loadOrCreateSecretKey, type SecretBox } from './secret-box';
import { isSealed } from './sealed-builder-key';

/**
 * Every column that holds a secret sealed with the server key (secret-box.ts). A new sealed column is
 * added here, so that the startup step seals its plain rows and key rotation re-seals it.
 */
export const SEALED_COLUMNS: ReadonlyArray<{ table: string; column: string }> = [
  { table: 'remote_builders', column: 'ssh_private_key' },
  { table: 'project_webhooks', column: 'secret' },
];

/**
 * The startup step: seals every secret still stored in plaintext (rows written before sealing).
 * Returns how many values it sealed, per `table.column`.
 */
export async function sealPlainStoredSecrets(db: Db, box: SecretBox): Promise<Record<string, number>> {
  const sealed: Record<string, number> = {};
  for (const { table, column } of SEALED_COLUMNS) {
    const rows: Array<{ id: string; value: string }> = await db(table).select('id', `${column} as value`).whereNotNull(column).whereNot(column, '').whereRaw(`?? !~ '^v[0-9]+:'`, [column]);
    for (const row of rows) {
      await db(table).where({ id: row.id, [column]: row.value }).update({ [column]: box.seal(row.value) });
    }
    if (rows.length) sealed[`${table}.${column}`] = rows.length;
  }
  return sealed;
}

/**
 * Rotates the server key: a new random key is written to `<key file>.new` (0600), every sealed value is
 * opened with the old key and sealed with the new one in one transaction, then the new key replaces the
 * old file (the old key is kept as `<key file>.previous`, 0600, until the operator deletes it).
 * Run it while Ringmaster is stopped: running processes keep the key they loaded.
 * If a rotation was interrupted after its transaction, running it again finds `<key file>.new` opens
 * the stored values and only finishes the file swap.
 */
export async function rotateSecretKey(db: Db, keyFile: string): Promise<{ resealed: Record<string, number>; finishedInterrupted: boolean }> {
  const pending = `${keyFile}.new`;
  const oldBox = secretBoxFromKey(loadOrCreateSecretKey(keyFile));
  if (fs.existsSync(pending)) {
    const pendingBox = secretBoxFromKey(loadOrCreateSecretKey(pending));
    if (await someValueOpensWith(db, pendingBox, oldBox)) {
      swapKeyFiles(keyFile, pending);
      return { resealed: {}, finishedInterrupted: true };
    }
    fs.rmSync(pending);
  }
  fs.writeFileSync(pending, `${crypto.randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  const newBox = secretBoxFromKey(loadOrCreateSecretKey(pending));
  const resealed: Record<string, number> = {};
  await db.transaction(async (trx) => {
    for (const { table, column } of SEALED_COLUMNS) {
      const rows: Array<{ id: string; value: string }> = await trx(table).select('id', `${column} as value`).whereNotNull(column).whereNot(column, '').forUpdate();
      for (const row of rows) {
        // A plain value (not sealed yet) is sealed with the new key directly.
        const plaintext = isSealed(row.value) ? oldBox.open(row.value) : row.value;
        await trx(table).where({ id: row.id }).update({ [column]: newBox.seal(plaintext) });
      }
      resealed[`${table}.${column}`] = rows.length;
    }
  });
  swapKeyFiles(keyFile, pending);
  return { resealed, finishedInterrupted: false };
}

/** Whether the stored values open with `candidate` and not with `current` (a committed but unfinished rotation). */
async function someValueOpensWith(db: Db, candidate: SecretBox, current: SecretBox): Promise<boolean> {
  for (const { table, column } of SEALED_COLUMNS) {
    const row = await db(table).select(`${column} as value`).whereRaw(`?? ~ '^v[0-9]+:'`, [column]).first();
    if (!row) continue;
    const opens = (box: SecretBox) => { try { box.open(row.value); return true; } catch { return false; } };
    return opens(candidate) && !opens(current);
  }
  return false;
}

function swapKeyFiles(keyFile: string, pending: string): void {
  fs.copyFileSync(keyFile, `${keyFile}.previous`);
  fs.chmodSync(`${keyFile}.previous`, 0o600);
  fs.renameSync(pending, keyFile);
}
