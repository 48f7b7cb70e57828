import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadOrCreateSecretKey, secretBoxFor, secretBoxFromKey, secretKeyFileOf } from '../../lib/secret-box';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-secret-box-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('secret box', () => {
  it('a sealed secret opens to the plaintext, in the v1:<iv>:<tag>:<ciphertext> format, and never contains it', () => {
    const box = secretBoxFromKey(crypto.randomBytes(32));
    const sealed = box.seal("It's a Secret to Everybody");
    assert.match(sealed, /^v1:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    assert.ok(!sealed.includes('Secret'));
    assert.equal(box.open(sealed), "It's a Secret to Everybody");
  });

  it('sealing the same secret twice gives different ciphertexts (a fresh IV each time)', () => {
    const box = secretBoxFromKey(crypto.randomBytes(32));
    assert.notEqual(box.seal('same'), box.seal('same'));
  });

  it('an altered ciphertext, a wrong key or an unknown version does not open', () => {
    const box = secretBoxFromKey(crypto.randomBytes(32));
    const sealed = box.seal('webhook secret');
    const parts = sealed.split(':');
    const ct = Buffer.from(parts[3], 'base64');
    ct[0] ^= 1;
    assert.throws(() => box.open([parts[0], parts[1], parts[2], ct.toString('base64')].join(':')), /does not open/);
    assert.throws(() => secretBoxFromKey(crypto.randomBytes(32)).open(sealed), /does not open/);
    assert.throws(() => box.open(`v9:${parts.slice(1).join(':')}`), /known version/);
    assert.throws(() => box.open('webhook secret'), /known version/);
  });

  it('the key file is created on first use with mode 0600 and reused afterwards', () => {
    const file = path.join(dir, 'nested', 'secret.key');
    const first = loadOrCreateSecretKey(file);
    assert.equal(first.length, 32);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(loadOrCreateSecretKey(file), first);
    const sealed = secretBoxFor(file).seal('kept');
    assert.equal(secretBoxFromKey(loadOrCreateSecretKey(file)).open(sealed), 'kept');
  });

  it('a key file of the wrong size is refused rather than silently replaced', () => {
    const file = path.join(dir, 'short.key');
    fs.writeFileSync(file, Buffer.alloc(16).toString('base64'));
    assert.throws(() => loadOrCreateSecretKey(file), /32 bytes/);
  });

  it('the key file is RINGMASTER_SECRET_KEY_FILE when set, else secret.key in the data folder', () => {
    assert.equal(secretKeyFileOf({ dataDir: '/srv/rm', secretKeyFile: undefined }), '/srv/rm/secret.key');
    assert.equal(secretKeyFileOf({ dataDir: '/srv/rm', secretKeyFile: '/etc/rm/key' }), '/etc/rm/key');
  });
});
