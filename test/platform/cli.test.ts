import path from 'node:path';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';

const CLI = path.resolve(__dirname, '..', '..', 'bin', 'ringmaster.js');

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/ringmaster.js ...args` with an argument array and the given environment. */
function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('the ringmaster CLI', () => {
  let stack: TestStack;
  let env: Record<string, string>;
  before(async () => {
    stack = await startTestStack({ worker: false });
    // DATABASE_URL points the CLI at the stack's database; the data folder keeps it off the repo's .data.
    env = { DATABASE_URL: stack.databaseUrl, RINGMASTER_DATA_DIR: stack.dataDir };
  });
  after(async () => stack?.stop());

  it('api-key create --name x --role admin prints a key as its last line, and the key works against the API', async () => {
    const r = await runCli(['api-key', 'create', '--name', 'x', '--role', 'admin'], env);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    const key = lines[lines.length - 1].trim();
    assert.ok(key.length >= 32, `a key on the last line, got ${JSON.stringify(key)}`);
    assert.doesNotMatch(key, /\s/);
    assert.match(lines[0], /"x" \(admin\)/);

    const system = await stack.request('GET', '/api/v1/admin/system', { key });
    assert.equal(system.status, 200, JSON.stringify(system.body));
    const created = await stack.request('POST', '/api/v1/projects', { key, body: { name: 'made-with-cli-key', repository_url: 'file:///srv/repo' } });
    assert.equal(created.status, 200, JSON.stringify(created.body));

    const stored = await stack.db('api_keys').where({ name: 'x' }).first();
    assert.equal(stored.role, 'admin');
    assert.notEqual(stored.key_hash, key, 'the key is stored hashed');
    const audit = await stack.db('audit_log').where({ action: 'api-key create', target_id: stored.id }).first();
    assert.ok(audit, 'the creation is in the audit log');
    assert.ok(!JSON.stringify(audit).includes(key), 'the audit row holds no secret');
  });

  it('a key created with the default role is read-only', async () => {
    const r = await runCli(['api-key', 'create', '--name', 'reader'], env);
    assert.equal(r.code, 0, r.stderr);
    const key = r.stdout.trim().split('\n').pop()!;
    const res = await stack.request('POST', '/api/v1/projects', { key, body: { name: 'by-reader', repository_url: 'file:///srv/repo' } });
    assert.equal(res.status, 403);
  });

  it('--role bogus exits non-zero with a message naming --role, and creates nothing', async () => {
    const before = await stack.db('api_keys').count<{ count: string }[]>('* as count');
    const r = await runCli(['api-key', 'create', '--name', 'y', '--role', 'bogus'], env);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--role/);
    assert.match(r.stderr, /admin/, 'the message lists the valid roles');
    assert.equal(r.stdout.trim(), '');
    const afterCount = await stack.db('api_keys').count<{ count: string }[]>('* as count');
    assert.equal(afterCount[0].count, before[0].count);
  });

  it('api-key create without --name exits non-zero naming --name', async () => {
    const r = await runCli(['api-key', 'create', '--role', 'admin'], env);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--name/);
  });
});
