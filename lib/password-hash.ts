import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { hash as argon2Hash, verify as argon2Verify, type Options as Argon2Options } from '@node-rs/argon2';

/**
 * Password hashing for local users: argon2id (`@node-rs/argon2`, a prebuilt addon that loads on
 * Node 20) for every new hash. Hashes are PHC strings, and verification dispatches on the stored
 * string's prefix, so `$scrypt$…` hashes written by earlier versions still verify.
 */

/** `Algorithm.Argon2id`: the package declares its enum as an ambient const enum, which isolated modules cannot read. */
const ARGON2ID = 2;
/** OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane. */
const ARGON2_OPTIONS: Argon2Options = { algorithm: ARGON2ID as Argon2Options['algorithm'], memoryCost: 19_456, timeCost: 2, parallelism: 1 };

const scrypt = promisify(crypto.scrypt) as (password: string, salt: Buffer, keylen: number, options: crypto.ScryptOptions) => Promise<Buffer>;
const SCRYPT_MAXMEM = 256 * 1024 * 1024;

/** Verifies a `$scrypt$ln=…,r=…,p=…$salt$key` hash (written by Ringmaster before argon2id everywhere). */
async function scryptVerify(stored: string, password: string): Promise<boolean> {
  const m = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/.exec(stored);
  if (!m) return false;
  const [logN, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (logN < 1 || logN > 20 || r < 1 || r > 32 || p < 1 || p > 16) return false;
  const expected = Buffer.from(m[5], 'base64url');
  const derived = await scrypt(password, Buffer.from(m[4], 'base64url'), expected.length, { N: 2 ** logN, r, p, maxmem: SCRYPT_MAXMEM });
  return derived.length === expected.length && crypto.timingSafeEqual(derived, expected);
}

/** An argon2id PHC string (`$argon2id$v=19$…`) for the password, with a fresh random salt. */
export async function hashPassword(password: string): Promise<string> {
  return argon2Hash(password, ARGON2_OPTIONS);
}

/** Whether the password matches the stored PHC string (argon2 or the older scrypt). Unknown formats never match. */
export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  if (stored.startsWith('$scrypt$')) return scryptVerify(stored, password);
  if (stored.startsWith('$argon2')) {
    try {
      return await argon2Verify(stored, password);
    } catch {
      return false;
    }
  }
  return false;
}

let decoyHash: Promise<string> | undefined;

/**
 * Spends the time of one verification against a throwaway hash, so that an unknown username takes
 * as long to refuse as a wrong password.
 */
export async function verifyDecoyPassword(password: string): Promise<false> {
  decoyHash ??= hashPassword(crypto.randomBytes(16).toString('hex'));
  await verifyPassword(await decoyHash, password);
  return false;
}
