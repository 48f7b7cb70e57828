import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { toNixBase32, sriToNixHash } from '../../lib/binary-cache/nix-base32';
import { NixSigningKey, loadOrCreateSigningKey } from '../../lib/binary-cache/nix-signing-key';
import { narFingerprint, renderNarInfo, type CachedPathInfo } from '../../lib/binary-cache/narinfo';
import { parseNarFileName } from '../../lib/binary-cache/nar-files';
import { dependenciesFirst } from '../../activities/nix/dependencies-first';
import { nixString } from '../support/nix-fixtures';

const execFileAsync = promisify(execFile);
const nix = (args: string[]) => execFileAsync('nix', ['--extra-experimental-features', 'nix-command', ...args]);

describe('Nix\'s base-32 hashes and signatures, checked against Nix 2.8 itself', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-signing-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a SHA-256 in SRI form converts to the base-32 form `nix hash to-base32` prints', async () => {
    for (let i = 0; i < 5; i++) {
      const sri = `sha256-${crypto.randomBytes(32).toString('base64')}`;
      const { stdout } = await nix(['hash', 'to-base32', sri]);
      assert.equal(sriToNixHash(sri), `sha256:${stdout.trim()}`);
    }
    assert.equal(toNixBase32(Buffer.alloc(0)), '');
    assert.throws(() => sriToNixHash('md5-AAAA'), /not a SHA-256/);
  });

  it('reads a key made by nix-store --generate-binary-cache-key, and signs a path exactly as nix store sign does', async () => {
    await execFileAsync('nix-store', ['--generate-binary-cache-key', 'ci.example.org-1', path.join(dir, 'sk'), path.join(dir, 'pk')]);
    const key = NixSigningKey.fromSecretKeyText(fs.readFileSync(path.join(dir, 'sk'), 'utf8'));
    assert.equal(key.publicKey, fs.readFileSync(path.join(dir, 'pk'), 'utf8').trim());
    assert.equal(NixSigningKey.fromSecretKeyText(key.secretKeyText()).publicKey, key.publicKey);

    // A path with a reference, in a store of the test's own, signed by Nix.
    const store = path.join(dir, 'store');
    const dep = (await nix(['store', 'add-file', '--store', store, path.join(dir, 'pk')])).stdout.trim();
    const file = path.join(dir, 'refers.nix');
    fs.writeFileSync(file, `builtins.toFile "refers" "see \${builtins.storePath ${nixString(dep)}}"`);
    const top = (await execFileAsync('nix-instantiate', ['--store', store, '--eval', '--read-write-mode', '-E', `import ${file}`])).stdout.trim().replace(/"/g, '');
    await nix(['store', 'sign', '--store', store, '--key-file', path.join(dir, 'sk'), top]);
    const [info] = JSON.parse((await nix(['path-info', '--store', store, '--json', '--sigs', top])).stdout);
    assert.deepEqual(info.references, [dep]);
    const fingerprint = narFingerprint({ storePath: top, narHash: sriToNixHash(info.narHash), narSize: info.narSize, references: info.references });
    assert.deepEqual(info.signatures, [key.sign(fingerprint)]);
  });

  it('a corrupt secret key is refused with a reason', () => {
    assert.throws(() => NixSigningKey.fromSecretKeyText('no-colon'), /name:base64/);
    assert.throws(() => NixSigningKey.fromSecretKeyText(`k-1:${Buffer.alloc(32).toString('base64')}`), /64 bytes/);
    const good = NixSigningKey.generate('k-1').secretKeyText();
    const bytes = Buffer.from(good.split(':')[1], 'base64');
    bytes[40] ^= 1;
    assert.throws(() => NixSigningKey.fromSecretKeyText(`k-1:${bytes.toString('base64')}`), /does not match/);
  });

  it('generates a key once into the data folder (mode 0600); later loads read the same key', () => {
    const dataDir = path.join(dir, 'data');
    const keys = Array.from({ length: 3 }, () => loadOrCreateSigningKey({ keyFile: undefined, dataDir, publicUrl: 'https://ci.example.org/' }));
    assert.equal(new Set(keys.map((k) => k.publicKey)).size, 1);
    assert.ok(keys[0].publicKey.startsWith('ci.example.org-1:'));
    assert.equal(fs.statSync(path.join(dataDir, 'binary-cache', 'secret-key')).mode & 0o777, 0o600);
    assert.equal(loadOrCreateSigningKey({ keyFile: undefined, dataDir, publicUrl: undefined }).publicKey, keys[0].publicKey);
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'binary-cache')).sort(), ['public-key', 'secret-key']);
    // A configured file wins over the data folder.
    const configured = loadOrCreateSigningKey({ keyFile: path.join(dir, 'sk'), dataDir, publicUrl: undefined });
    assert.ok(configured.publicKey.startsWith('ci.example.org-1:'));
    assert.notEqual(configured.publicKey, keys[0].publicKey);
  });
});

describe('narinfo text and NAR names', () => {
  const info: CachedPathInfo = {
    storePath: '/nix/store/7h2zcq6ls5sbd5xwl0c7zvl6a3bgv5l7-app',
    narHash: 'sha256:1wrgrm5a8i62qk80cb59krjr4h60hcddm7pv44b48h1qhj6mivch',
    narSize: 120,
    fileHash: 'sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73',
    fileSize: 96,
    compression: 'xz',
    references: ['/nix/store/zz2zcq6ls5sbd5xwl0c7zvl6a3bgv5l7-lib', '/nix/store/7h2zcq6ls5sbd5xwl0c7zvl6a3bgv5l7-app'],
    deriver: '/nix/store/aa2zcq6ls5sbd5xwl0c7zvl6a3bgv5l7-app.drv',
    ca: null,
  };

  it('has every field, references as sorted base names, URL by file hash', () => {
    assert.equal(
      renderNarInfo(info, ['k-1:c2ln']),
      [
        'StorePath: /nix/store/7h2zcq6ls5sbd5xwl0c7zvl6a3bgv5l7-app',
        'URL: nar/0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73.nar.xz',
        'Compression: xz',
        'FileHash: sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73',
        'FileSize: 96',
        'NarHash: sha256:1wrgrm5a8i62qk80cb59krjr4h60hcddm7pv44b48h1qhj6mivch',
        'NarSize: 120',
        'References: 7h2zcq6ls5sbd5xwl0c7zvl6a3bgv5l7-app zz2zcq6ls5sbd5xwl0c7zvl6a3bgv5l7-lib',
        'Deriver: aa2zcq6ls5sbd5xwl0c7zvl6a3bgv5l7-app.drv',
        'Sig: k-1:c2ln',
        '',
      ].join('\n'),
    );
    assert.equal(
      narFingerprint(info),
      '1;/nix/store/7h2zcq6ls5sbd5xwl0c7zvl6a3bgv5l7-app;sha256:1wrgrm5a8i62qk80cb59krjr4h60hcddm7pv44b48h1qhj6mivch;120;/nix/store/7h2zcq6ls5sbd5xwl0c7zvl6a3bgv5l7-app,/nix/store/zz2zcq6ls5sbd5xwl0c7zvl6a3bgv5l7-lib',
    );
  });

  it('a NAR URL segment parses only as <52 base-32 chars>.nar.xz', () => {
    assert.deepEqual(parseNarFileName('0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73.nar.xz'), { fileHash: 'sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73', compression: 'xz' });
    for (const bad of ['../secret-key', '0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73.nar', 'e'.repeat(52) + '.nar.xz', '']) assert.equal(parseNarFileName(bad), null);
  });

  it('publishes dependencies before what refers to them', () => {
    const infos = new Map([
      ['/a', { references: ['/b', '/a'] }],
      ['/b', { references: ['/c'] }],
      ['/c', { references: [] }],
      ['/d', { references: ['/a', '/outside'] }],
    ]);
    const order = dependenciesFirst(['/d', '/a', '/b', '/c'], infos);
    assert.deepEqual([...order].sort(), ['/a', '/b', '/c', '/d']);
    for (const [p, { references }] of infos) for (const r of references) if (r !== p && infos.has(r)) assert.ok(order.indexOf(r) < order.indexOf(p), `${r} before ${p}`);
  });
});
