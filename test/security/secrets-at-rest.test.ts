import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { secretBoxFromKey, secretKeyFileOf } from '../../lib/secret-box';
import { sealPlainStoredSecrets, SEALED_COLUMNS } from '../../lib/stored-secrets';
import { openBuilderKey } from '../../lib/sealed-builder-key';
import { runProcess } from '../../lib/process-runner';

const REPO = path.resolve(__dirname, '..', '..');

function privateKeyPem(): string {
  return crypto.generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
}

/** The whole table as text, as a dump would show it. */
async function dumpOf(stack: TestStack, table: string): Promise<string> {
  const rows = (await stack.db.raw(`SELECT t::text AS line FROM "${table}" t`)).rows as Array<{ line: string }>;
  return rows.map((r) => r.line).join('\n');
}

const boxOfFile = (file: string) => secretBoxFromKey(Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64'));

describe('secrets at rest, sealed with the server key', () => {
  let stack: TestStack;
  let keyFile: string;
  before(async () => {
    stack = await startTestStack({ worker: false });
    keyFile = secretKeyFileOf(stack.config);
  });
  after(async () => stack?.stop());

  it("a builder's SSH private key and a webhook secret sent to the API appear nowhere in a dump of their tables", async () => {
    const privateKey = privateKeyPem();
    const builder = await stack.request('POST', '/api/v1/admin/builders', {
      key: stack.adminKey, body: { name: 'sealed-builder', ssh_uri: 'ssh://nix@127.0.0.1', systems: ['x86_64-linux'], ssh_private_key: privateKey },
    });
    assert.equal(builder.status, 200, builder.text);
    const project = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body: { name: 'sealed', repository_url: 'file:///srv/sealed' } });
    const webhookSecret = `whsec-${crypto.randomBytes(12).toString('hex')}`;
    const webhook = await stack.request('POST', `/api/v1/projects/${project.body.id}/webhooks`, { key: stack.adminKey, body: { forge_type: 'github', secret: webhookSecret } });
    assert.equal(webhook.status, 200, webhook.text);

    const keyBody = privateKey.split('\n')[1];
    assert.ok(!(await dumpOf(stack, 'remote_builders')).includes(keyBody));
    assert.ok(!(await dumpOf(stack, 'project_webhooks')).includes(webhookSecret));
    const row = await stack.db('remote_builders').where({ id: builder.body.id }).first();
    assert.equal(openBuilderKey(row.ssh_private_key, boxOfFile(keyFile)), privateKey, 'the worker opens it with the key file');
  });

  it('a private key stored in plaintext before sealing is sealed by the startup step, once', async () => {
    const privateKey = privateKeyPem();
    const [row] = await stack.db('remote_builders').insert({ name: 'plain-builder', ssh_uri: 'ssh://nix@127.0.0.1', ssh_private_key: privateKey }).returning('id');
    const sealed = await sealPlainStoredSecrets(stack.db, boxOfFile(keyFile));
    assert.deepEqual(sealed, { 'remote_builders.ssh_private_key': 1 });
    const stored = (await stack.db('remote_builders').where({ id: row.id }).first()).ssh_private_key as string;
    assert.ok(!stored.includes('PRIVATE KEY'));
    assert.equal(openBuilderKey(stored, boxOfFile(keyFile)), privateKey);
    assert.deepEqual(await sealPlainStoredSecrets(stack.db, boxOfFile(keyFile)), {}, 'a second start has nothing left to seal');
  });

  it('`ringmaster secret-key rotate` re-seals every stored secret with a new key and keeps the previous key aside', async () => {
    const oldBox = boxOfFile(keyFile);
    const before: Array<{ table: string; column: string; plaintext: string[] }> = [];
    for (const { table, column } of SEALED_COLUMNS) {
      const values = (await stack.db(table).whereNotNull(column).orderBy('id').pluck(column)) as string[];
      before.push({ table, column, plaintext: values.map((v) => oldBox.open(v)) });
    }
    assert.ok(before.every((b) => b.plaintext.length > 0), 'there are sealed values of every column to rotate');

    const result = await runProcess(process.execPath, [path.join(REPO, 'bin', 'ringmaster.js'), 'secret-key', 'rotate'], {
      cwd: REPO,
      env: { ...process.env, DATABASE_URL: stack.databaseUrl, RINGMASTER_DATA_DIR: stack.dataDir },
      timeoutMs: 120_000,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /rotated the server key/);

    const newBox = boxOfFile(keyFile);
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    assert.equal(fs.statSync(`${keyFile}.previous`).mode & 0o777, 0o600);
    assert.doesNotThrow(() => boxOfFile(`${keyFile}.previous`).open(oldBox.seal('x')), 'the previous key is the old one');
    for (const { table, column, plaintext } of before) {
      const values = (await stack.db(table).whereNotNull(column).orderBy('id').pluck(column)) as string[];
      assert.deepEqual(values.map((v) => newBox.open(v)), plaintext, `${table}.${column} opens with the new key`);
      for (const v of values) assert.throws(() => oldBox.open(v), `${table}.${column} no longer opens with the old key`);
    }
    for (const secret of before.flatMap((b) => b.plaintext)) assert.ok(!`${result.stdout}${result.stderr}`.includes(secret), 'the command prints no secret');
  });
});
