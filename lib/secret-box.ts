import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { RingmasterConfig } from './config';

/**
 * Encryption at rest for secrets the server must read back in plaintext (webhook secrets, and later builder
 * SSH keys and forge tokens): AES-256-GCM with one server key.
 *
 * A sealed value is `v1:<iv>:<tag>:<ciphertext>`, each part base64; the version prefix lets a later key or
 * cipher coexist with values sealed before. The key file holds 32 random bytes as base64; it is created on
 * first use with mode 0600 (exclusively, so two processes starting together agree on one key).
 */

const KEY_BYTES = 32;
const IV_BYTES = 12;
const VERSION = 'v1';

export class SecretBoxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretBoxError';
  }
}

export interface SecretBox {
  seal(plaintext: string): string;
  open(sealed: string): string;
}

export function secretBoxFromKey(key: Buffer): SecretBox {
  if (key.length !== KEY_BYTES) throw new SecretBoxError(`the secret key must be ${KEY_BYTES} bytes, got ${key.length}`);
  return {
    seal(plaintext) {
      const iv = crypto.randomBytes(IV_BYTES);
      const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return [VERSION, iv.toString('base64'), cipher.getAuthTag().toString('base64'), ciphertext.toString('base64')].join(':');
    },
    open(sealed) {
      const parts = sealed.split(':');
      if (parts.length !== 4 || parts[0] !== VERSION) throw new SecretBoxError('not a sealed secret of a known version');
      const [, iv, tag, ciphertext] = parts.map((p) => Buffer.from(p, 'base64'));
      try {
        const decipher = crypto.createDecipheriv('aes-256-gcm', key, iv);
        decipher.setAuthTag(tag);
        return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
      } catch {
        // Never echo the value: only say that it does not open with this key.
        throw new SecretBoxError('the sealed secret does not open with the server key (wrong key or altered value)');
      }
    },
  };
}

function readKeyFile(file: string): Buffer {
  const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== KEY_BYTES) throw new SecretBoxError(`${file} must hold ${KEY_BYTES} bytes as base64`);
  return key;
}

/** Reads the key file, creating it (mode 0600) with a fresh random key when it does not exist. */
export function loadOrCreateSecretKey(file: string): Buffer {
  try {
    return readKeyFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  try {
    fs.writeFileSync(file, `${crypto.randomBytes(KEY_BYTES).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return readKeyFile(file);
}

const boxes = new Map<string, SecretBox>();

/** The key file a config names: RINGMASTER_SECRET_KEY_FILE, else `secret.key` in the data folder. */
export function secretKeyFileOf(config: Pick<RingmasterConfig, 'dataDir' | 'secretKeyFile'>): string {
  return config.secretKeyFile ?? path.join(config.dataDir, 'secret.key');
}

/** The server's secret box for a key file (loaded once per process). */
export function secretBoxFor(keyFile: string): SecretBox {
  const resolved = path.resolve(keyFile);
  let box = boxes.get(resolved);
  if (!box) {
    box = secretBoxFromKey(loadOrCreateSecretKey(resolved));
    boxes.set(resolved, box);
  }
  return box;
}
