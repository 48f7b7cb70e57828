import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultConfigContents, isSecretKey, readConfigFile, redactConfigContents, replaceConfigFile, validateConfigContents, writeConfigFileAtomically } from '../../lib/config-file';

describe('config file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-config-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reading a missing file gives the default config', async () => {
    assert.equal(await readConfigFile(path.join(dir, 'absent.json')), defaultConfigContents());
    assert.equal(validateConfigContents(defaultConfigContents()).ok, true);
  });

  it('an atomic write creates missing folders, replaces the old text and leaves no temp file', async () => {
    const file = path.join(dir, 'nested', 'ringmaster.json');
    await writeConfigFileAtomically(file, '{"a": 1}');
    await writeConfigFileAtomically(file, '{"a": 2}');
    assert.equal(fs.readFileSync(file, 'utf8'), '{"a": 2}');
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['ringmaster.json']);
  });

  it('validation names the field of every problem', () => {
    const result = validateConfigContents('{"foo": 1, "builds": {"log_limit_bytes": -1}}');
    assert.equal(result.ok, false);
    if (result.ok) return;
    assert.deepEqual(result.problems.map((p) => p.field).sort(), ['contents.builds.log_limit_bytes', 'contents.foo']);
  });

  it('the secret rule is lib/redact.ts’s', () => {
    for (const key of ['client_secret', 'bind_password', 'github_token', 'password']) assert.equal(isSecretKey(key), true, key);
    for (const key of ['client_id', 'bind_dn', 'max_concurrent', 'log_limit_bytes']) assert.equal(isSecretKey(key), false, key);
  });

  it('redaction replaces secrets at any depth and keeps everything else', () => {
    const shown = JSON.parse(redactConfigContents('{"github_oauth": {"client_id": "id", "client_secret": "s"}, "evaluator": {"max_concurrent": 2}}'));
    assert.deepEqual(shown, { github_oauth: { client_id: 'id', client_secret: '[redacted]' }, evaluator: { max_concurrent: 2 } });
  });

  it('replacing keeps the admin’s formatting when no secret had to be restored', async () => {
    const file = path.join(dir, 'formatted.json');
    const text = '{ "evaluator": { "max_concurrent": 7 } }';
    const result = await replaceConfigFile(file, text);
    assert.equal(result.ok, true);
    assert.equal(fs.readFileSync(file, 'utf8'), text);
  });

  it('a refused replacement writes nothing', async () => {
    const file = path.join(dir, 'refused.json');
    const result = await replaceConfigFile(file, '{"unknown_section": {}}');
    assert.equal(result.ok, false);
    assert.equal(fs.existsSync(file), false);
  });
});
