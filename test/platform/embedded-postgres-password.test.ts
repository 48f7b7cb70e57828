import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startEmbeddedPostgres, type RunningPostgres } from '../../lib/embedded-postgres';
import { LEGACY_PASSWORD, passwordFileOf } from '../../lib/embedded-postgres-password';
import { freePort } from '../../lib/processes';

async function signIn(password: string, port: number): Promise<'accepted' | 'refused'> {
  const client = new pg.Client({ connectionString: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres` });
  try {
    await client.connect();
    return 'accepted';
  } catch (err) {
    if ((err as { code?: string }).code === '28P01') return 'refused';
    throw err;
  } finally {
    await client.end().catch(() => {});
  }
}

describe("the embedded PostgreSQL's superuser password", () => {
  let dir: string;
  let dataDir: string;
  let port: number;
  const logLines: string[] = [];
  const started: RunningPostgres[] = [];
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-pg-password-'));
    fs.chmodSync(dir, 0o755); // the embedded server runs as the postgres user when we are root
    dataDir = path.join(dir, 'postgres');
    port = await freePort();
  });
  after(async () => {
    for (const server of started) if (server.owned) await server.stop().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is random, made on first start, kept beside the data with mode 0600, and the only one accepted', async () => {
    const server = await startEmbeddedPostgres(dataDir, port, (l) => logLines.push(l));
    started.push(server);
    const file = passwordFileOf(dataDir);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const password = fs.readFileSync(file, 'utf8').trim();
    assert.match(password, /^[0-9a-f]{48}$/);
    assert.equal(decodeURIComponent(new URL(server.baseUrl).password), password);
    assert.equal(await signIn(password, port), 'accepted');
    assert.equal(await signIn(LEGACY_PASSWORD, port), 'refused', 'the former built-in password no longer opens it');
    assert.ok(logLines.length > 0, 'the server logged its start');
    assert.ok(!logLines.some((l) => l.includes(password)), 'no log line shows the password');
    await server.stop();
  });

  it('a cluster that still has the former built-in password gets a random one on its next start', async () => {
    // Make the cluster look like one initialised before random passwords: the fixed password, no file.
    const first = await startEmbeddedPostgres(dataDir, port);
    started.push(first);
    const client = new pg.Client({ connectionString: first.baseUrl });
    await client.connect();
    await client.query(`ALTER USER postgres PASSWORD '${LEGACY_PASSWORD}'`);
    await client.end();
    await first.stop();
    fs.rmSync(passwordFileOf(dataDir));

    const lines: string[] = [];
    const second = await startEmbeddedPostgres(dataDir, port, (l) => lines.push(l));
    started.push(second);
    const password = fs.readFileSync(passwordFileOf(dataDir), 'utf8').trim();
    assert.notEqual(password, LEGACY_PASSWORD);
    assert.equal(await signIn(password, port), 'accepted');
    assert.equal(await signIn(LEGACY_PASSWORD, port), 'refused');
    assert.ok(lines.some((l) => l.includes('now has a random one')), 'the change is logged (without the password)');
    assert.ok(!lines.some((l) => l.includes(password)));
  });

  it('a second start beside the running server reads the same password from the file', async () => {
    const beside = await startEmbeddedPostgres(dataDir, await freePort());
    started.push(beside);
    assert.equal(beside.owned, false);
    assert.equal(await signIn(decodeURIComponent(new URL(beside.baseUrl).password), beside.port), 'accepted');
  });
});
