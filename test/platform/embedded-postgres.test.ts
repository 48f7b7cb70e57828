import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import pg from 'pg';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ensureDatabase, runningPostmasterPort, startEmbeddedPostgres, type RunningPostgres } from '../../lib/embedded-postgres';
import { freePort } from '../../lib/processes';

async function query<T>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, values)).rows as T[];
  } finally {
    await client.end();
  }
}

describe('the embedded PostgreSQL of npm start', () => {
  let dir: string;
  let dataDir: string;
  let port: number;
  const started: RunningPostgres[] = [];
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-embedded-pg-'));
    fs.chmodSync(dir, 0o755); // the embedded server runs as the postgres user
    dataDir = path.join(dir, 'postgres');
    port = await freePort();
  });
  after(async () => {
    for (const server of started) if (server.owned) await server.stop().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a second start on the same folder finds the rows written before the first stop', async () => {
    const first = await startEmbeddedPostgres(dataDir, port);
    started.push(first);
    assert.equal(first.owned, true);
    assert.equal(first.port, port);
    const url = await ensureDatabase(first.baseUrl, 'ringmaster');
    await query(url, 'CREATE TABLE kept (id integer primary key, note text not null)');
    await query(url, 'INSERT INTO kept VALUES ($1, $2)', [1, 'written before the restart']);
    await first.stop();
    assert.equal(runningPostmasterPort(dataDir), undefined, 'no postmaster runs after stop');

    const second = await startEmbeddedPostgres(dataDir, port);
    started.push(second);
    assert.equal(second.owned, true);
    const again = await ensureDatabase(second.baseUrl, 'ringmaster');
    assert.equal(again, url);
    assert.deepEqual(await query(again, 'SELECT id, note FROM kept'), [{ id: 1, note: 'written before the restart' }]);
  });

  it('runningPostmasterPort finds the running server, and a start beside it reuses it without owning it', async () => {
    assert.equal(runningPostmasterPort(dataDir), port);
    const beside = await startEmbeddedPostgres(dataDir, await freePort());
    started.push(beside);
    assert.equal(beside.owned, false, 'a reused server is not ours to stop');
    assert.equal(beside.port, port, 'the running server\'s port, not the one asked for');
    const rows = await query<{ note: string }>(await ensureDatabase(beside.baseUrl, 'ringmaster'), 'SELECT note FROM kept');
    assert.equal(rows[0].note, 'written before the restart');
    await beside.stop(); // a no-op for a reused server
    assert.equal(runningPostmasterPort(dataDir), port, 'stopping the reused handle leaves the server running');
  });

  it('runningPostmasterPort is undefined for a folder with no server, or with a stale postmaster.pid', () => {
    assert.equal(runningPostmasterPort(path.join(dir, 'nothing-here')), undefined);
    const stale = path.join(dir, 'stale');
    fs.mkdirSync(stale);
    const exited = spawnSync(process.execPath, ['-e', 'process.pid']).pid; // a PID whose process is gone
    fs.writeFileSync(path.join(stale, 'postmaster.pid'), `${exited}\n${stale}\n1700000000\n${port}\n/tmp\n127.0.0.1\n`);
    assert.equal(runningPostmasterPort(stale), undefined);
  });
});

describe('the embedded PostgreSQL as root, with its data folder inside a folder only root can enter', { skip: process.getuid?.() !== 0 && 'needs root' }, () => {
  let home: string;
  let systemDir: string;
  const started: RunningPostgres[] = [];
  const previousSystemDir = process.env.RINGMASTER_SYSTEM_DIR;
  before(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-root-only-'));
    fs.chmodSync(home, 0o700);
    systemDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-system-'));
    fs.chmodSync(systemDir, 0o755);
    process.env.RINGMASTER_SYSTEM_DIR = systemDir;
  });
  after(async () => {
    for (const server of started) if (server.owned) await server.stop().catch(() => {});
    if (previousSystemDir === undefined) delete process.env.RINGMASTER_SYSTEM_DIR;
    else process.env.RINGMASTER_SYSTEM_DIR = previousSystemDir;
    fs.rmSync(home, { recursive: true, force: true });
    fs.rmSync(systemDir, { recursive: true, force: true });
  });

  it('keeps its data where the postgres user owns it, links to it, and finds it again on the next start', async () => {
    const dataDir = path.join(home, '.data', 'postgres');
    const port = await freePort();
    const first = await startEmbeddedPostgres(dataDir, port);
    started.push(first);
    assert.ok(fs.lstatSync(dataDir).isSymbolicLink(), 'the data folder is a link');
    const real = fs.realpathSync(dataDir);
    assert.ok(real.startsWith(path.join(systemDir, 'data') + path.sep), real);
    assert.equal(fs.statSync(real).mode & 0o777, 0o700);
    assert.equal(runningPostmasterPort(dataDir), port, 'the running server is found through the link');
    const url = await ensureDatabase(first.baseUrl, 'ringmaster');
    await query(url, 'CREATE TABLE kept (note text not null)');
    await query(url, 'INSERT INTO kept VALUES ($1)', ['through the link']);
    await first.stop();
    assert.equal(runningPostmasterPort(dataDir), undefined);

    const second = await startEmbeddedPostgres(dataDir, port);
    started.push(second);
    assert.equal(fs.realpathSync(dataDir), real, 'the same data folder');
    assert.deepEqual(await query(await ensureDatabase(second.baseUrl, 'ringmaster'), 'SELECT note FROM kept'), [{ note: 'through the link' }]);
  });
});
