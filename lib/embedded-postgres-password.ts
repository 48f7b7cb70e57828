import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';

/**
 * The embedded PostgreSQL's superuser password: random, made on first start, kept beside the cluster
 * in `<data folder>.password` (mode 0600, so only the user running Ringmaster — or root — can read
 * it), and printed nowhere. Clusters made before this had a fixed password, LEGACY_PASSWORD; the
 * first start that finds such a cluster changes it (ALTER USER, signed in once with the old one).
 */
export const LEGACY_PASSWORD = 'ringmaster-local';

export function passwordFileOf(dataDir: string): string {
  return `${path.resolve(dataDir)}.password`;
}

function readPassword(file: string): string | undefined {
  try {
    const value = fs.readFileSync(file, 'utf8').trim();
    return value || undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The cluster's password: the one in its file, or a new one written there (0600) first. */
export function loadOrCreatePassword(dataDir: string): string {
  const file = passwordFileOf(dataDir);
  const existing = readPassword(file);
  if (existing) return existing;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  try {
    fs.writeFileSync(file, `${crypto.randomBytes(24).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another start wrote it first: use theirs.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  fs.chmodSync(file, 0o600);
  return readPassword(file)!;
}

function urlWith(user: string, password: string, port: number): string {
  return `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
}

async function signsIn(user: string, password: string, port: number): Promise<boolean> {
  const client = new pg.Client({ connectionString: urlWith(user, password, port) });
  try {
    await client.connect();
    return true;
  } catch (err) {
    // 28P01: invalid_password. Anything else (not up yet, …) is not ours to decide here.
    if ((err as { code?: string }).code === '28P01') return false;
    throw err;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Makes sure the running cluster accepts `password`: when it still has the legacy one, signs in with
 * that once and changes it. Throws when neither works (the file was replaced by hand, say).
 */
export async function adoptPassword(user: string, password: string, port: number, log: (line: string) => void): Promise<void> {
  if (await signsIn(user, password, port)) return;
  if (!(await signsIn(user, LEGACY_PASSWORD, port))) {
    throw new Error(`the embedded PostgreSQL on 127.0.0.1:${port} accepts neither the password in its password file nor the former built-in one`);
  }
  const client = new pg.Client({ connectionString: urlWith(user, LEGACY_PASSWORD, port) });
  await client.connect();
  try {
    await client.query(`ALTER USER ${client.escapeIdentifier(user)} PASSWORD ${client.escapeLiteral(password)}`);
  } finally {
    await client.end();
  }
  log('the embedded PostgreSQL had the former built-in password; it now has a random one, kept in its password file (0600)');
}
