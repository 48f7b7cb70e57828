import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * Password hashing for local users: argon2id (the `argon2` npm package) when its native addon loads,
 * scrypt from node:crypto otherwise. Both produce PHC strings, and verification dispatches on the
 * stored string's prefix, so hashes made by either stay verifiable.
 *
 * Why the fallback: argon2@0.45's prebuilt addon declares Node-API 10, and Node 20 (Node-API 9)
 * crashes with SIGSEGV while refusing it, instead of throwing. A crash cannot be caught, so whether
 * the addon loads is probed once in a child process. `npm rebuild argon2 --build-from-source`
 * (or Node >= 22) makes argon2id available.
 */

type Argon2Module = typeof import('argon2');

let argon2Probe: Promise<Argon2Module | undefined> | undefined;

function probeArgon2InChild(resolved: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', `require(${JSON.stringify(resolved)})`], { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code === 0);
    });
  });
}

/** The argon2 module if its native addon loads in this Node, else undefined (probed once). */
export function loadArgon2(): Promise<Argon2Module | undefined> {
  argon2Probe ??= (async () => {
    let resolved: string;
    try {
      resolved = require.resolve('argon2');
    } catch {
      return undefined;
    }
    if (!(await probeArgon2InChild(resolved))) return undefined;
    return (await import('argon2')) as Argon2Module;
  })();
  return argon2Probe;
}

const scrypt = promisify(crypto.scrypt) as (password: string, salt: Buffer, keylen: number, options: crypto.ScryptOptions) => Promise<Buffer>;
const SCRYPT_LOG_N = 15;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const SCRYPT_KEY_BYTES = 32;
const SCRYPT_MAXMEM = 256 * 1024 * 1024;

async function scryptHash(password: string): Promise<string> {
  const salt = crypto.randomBytes(16);
  const derived = await scrypt(password, salt, SCRYPT_KEY_BYTES, { N: 2 ** SCRYPT_LOG_N, r: SCRYPT_R, p: SCRYPT_P, maxmem: SCRYPT_MAXMEM });
  return `$scrypt$ln=${SCRYPT_LOG_N},r=${SCRYPT_R},p=${SCRYPT_P}$${salt.toString('base64url')}$${derived.toString('base64url')}`;
}

async function scryptVerify(stored: string, password: string): Promise<boolean> {
  const m = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/.exec(stored);
  if (!m) return false;
  const [logN, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (logN < 1 || logN > 20 || r < 1 || r > 32 || p < 1 || p > 16) return false;
  const expected = Buffer.from(m[5], 'base64url');
  const derived = await scrypt(password, Buffer.from(m[4], 'base64url'), expected.length, { N: 2 ** logN, r, p, maxmem: SCRYPT_MAXMEM });
  return derived.length === expected.length && crypto.timingSafeEqual(derived, expected);
}

/** A PHC string for the password: `$argon2id$…` when argon2 loads, else `$scrypt$…`. */
export async function hashPassword(password: string): Promise<string> {
  const argon2 = await loadArgon2();
  if (argon2) return argon2.hash(password, { type: argon2.argon2id });
  return scryptHash(password);
}

/** Whether the password matches the stored PHC string. Unknown formats never match. */
export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  if (stored.startsWith('$scrypt$')) return scryptVerify(stored, password);
  if (stored.startsWith('$argon2')) {
    const argon2 = await loadArgon2();
    if (!argon2) throw new Error('this password was hashed with argon2, whose native addon does not load here (run `npm rebuild argon2 --build-from-source`)');
    try {
      return await argon2.verify(stored, password);
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
