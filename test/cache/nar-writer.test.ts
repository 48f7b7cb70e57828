import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { narOfPath } from '../../lib/binary-cache/nar-writer';
import { nixSha256Hash } from '../../lib/binary-cache/nix-base32';
import { narFilePath } from '../../lib/binary-cache/nar-files';
import { compressNar, IN_PROCESS_NAR_MAX_BYTES } from '../../activities/cache/compress-nar';
import { storePathInfos } from '../../activities/cache/store-path-info';
import { nonce } from '../support/nix-fixtures';

/** What real Nix writes for a path: the reference the in-process NAR must equal. */
const nixStoreDump = (storePath: string) => execFileSync('nix-store', ['--dump', storePath], { maxBuffer: 64 * 1024 * 1024 });
const xzDecompress = (file: string) => execFileSync('xz', ['--decompress', '--stdout', file], { maxBuffer: 64 * 1024 * 1024 });
/** A NAR string token: 8-byte little-endian length, the bytes, zeros to a multiple of 8. */
const narString = (bytes: Buffer) => {
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(bytes.length));
  return Buffer.concat([length, bytes, Buffer.alloc((8 - (bytes.length % 8)) % 8)]);
};
/** A file name that is not UTF-8: NAR names are bytes. */
const NOT_UTF8_NAME = Buffer.from([0x6e, 0xff]);
const nixSha256 = (bytes: Buffer) => nixSha256Hash(crypto.createHash('sha256').update(bytes).digest());

describe('the in-process NAR writer and compressor (small paths published without spawning)', () => {
  const scratch: string[] = [];
  const tempDir = (prefix: string) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    scratch.push(dir);
    return dir;
  };
  /** `nix-store --add` of a file system object made in a temp folder: a real store path holding it. */
  const addToStore = (make: (at: string) => void, name: string) => {
    const at = path.join(tempDir('ringmaster-nar-'), name);
    make(at);
    return execFileSync('nix-store', ['--add', at], { encoding: 'utf8' }).trim();
  };

  let tree: string;
  const unique = nonce();

  before(() => {
    // Names ordered by their bytes: "B" (42) < "a" (61) < "n\xff" (6e ff, not UTF-8) < "ä" (c3 a4) <
    // "ﬁ" (U+FB01: ef ac 81) < "😀" (U+1F600: f0 9f 98 80). As JavaScript (UTF-16) strings "😀" (d83d de00)
    // would sort before "ﬁ" (fb01).
    tree = addToStore((at) => {
      fs.mkdirSync(path.join(at, 'a', 'nested', 'deeper'), { recursive: true });
      fs.mkdirSync(path.join(at, 'B'));
      fs.writeFileSync(path.join(at, 'a', 'nested', 'deeper', 'file'), `deep ${unique}\n`);
      fs.writeFileSync(path.join(at, 'B', 'z'), 'upper\n');
      fs.writeFileSync(path.join(at, 'ä'), 'umlaut\n');
      fs.writeFileSync(path.join(at, 'ﬁ'), 'ligature\n');
      fs.writeFileSync(path.join(at, '😀'), 'emoji\n');
      fs.writeFileSync(Buffer.concat([Buffer.from(`${at}/`), NOT_UTF8_NAME]), 'not utf-8\n');
      fs.writeFileSync(path.join(at, 'empty'), '');
      fs.writeFileSync(path.join(at, 'seven'), '7 bytes'); // contents padded to 8
      fs.writeFileSync(path.join(at, 'eight!!!'), 'exactly8'); // a name and contents needing no padding
      fs.writeFileSync(path.join(at, 'run'), '#!/bin/sh\necho hello\n', { mode: 0o755 });
      fs.symlinkSync('a/nested/deeper/file', path.join(at, 'link'));
      fs.symlinkSync('/nowhere/at/all', path.join(at, 'dangling'));
    }, `nar-tree-${unique}`);
  });
  after(() => {
    for (const dir of scratch) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a directory tree (nested folders, names in byte order, an empty file, an executable, symlinks) serialises to exactly what nix-store --dump writes', async () => {
    assert.equal(fs.readdirSync(tree).length, 12);
    const nar = await narOfPath(tree);
    assert.ok(nar.equals(nixStoreDump(tree)), 'the in-process NAR differs from nix-store --dump');
    // The top folder's entries come in the byte order of their names.
    const names = ['B', 'a', 'dangling', 'eight!!!', 'empty', 'link', NOT_UTF8_NAME, 'run', 'seven', 'ä', 'ﬁ', '😀'].map((n) => (typeof n === 'string' ? Buffer.from(n) : n));
    const at = names.map((name) => nar.indexOf(Buffer.concat([narString(Buffer.from('name')), narString(name)])));
    assert.ok(at.every((i) => i > 0), `every entry is in the NAR: ${at}`);
    assert.deepEqual([...at].sort((x, y) => x - y), at);
  });

  it('store paths that are a single regular file, an empty file, an executable or a symlink serialise exactly as nix-store --dump writes them', async () => {
    const singles = [
      addToStore((at) => fs.writeFileSync(at, `plain ${unique}\n`), 'plain'),
      addToStore((at) => fs.writeFileSync(at, ''), 'empty'),
      addToStore((at) => fs.writeFileSync(at, `#!/bin/sh\necho ${unique}\n`, { mode: 0o755 }), 'script'),
      addToStore((at) => fs.symlinkSync(`target-${unique}`, at), 'symlink'),
    ];
    for (const storePath of singles) assert.ok((await narOfPath(storePath)).equals(nixStoreDump(storePath)), `${storePath}: the in-process NAR differs from nix-store --dump`);
  });

  it('a small path is compressed in-process to an xz file that xz decompresses to the same NAR, named by its own hash, with the store\'s NAR hash and size', async () => {
    const info = (await storePathInfos([tree])).get(tree)!;
    assert.ok(info.narSize <= IN_PROCESS_NAR_MAX_BYTES);
    const dataDir = tempDir('ringmaster-nar-data-');
    const stored = await compressNar(dataDir, tree, info.narSize);
    assert.equal(stored.compression, 'xz');
    assert.equal(stored.file, narFilePath(dataDir, stored.fileHash, 'xz'));
    const file = fs.readFileSync(stored.file);
    assert.ok(file.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])), 'an xz container (not raw lzma)');
    assert.ok(xzDecompress(stored.file).equals(nixStoreDump(tree)));
    assert.equal(stored.fileHash, nixSha256(file));
    assert.equal(stored.fileSize, file.length);
    assert.deepEqual({ narHash: stored.narHash, narSize: stored.narSize }, { narHash: info.narHash, narSize: info.narSize });
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'nix-cache', 'tmp')), [], 'no scratch file is left behind');
  });

  it('a path whose NAR is larger than the in-process limit is streamed through nix-store --dump and xz into the same kind of file', async () => {
    const info = (await storePathInfos([tree])).get(tree)!;
    const dataDir = tempDir('ringmaster-nar-data-');
    const streamed = await compressNar(dataDir, tree, IN_PROCESS_NAR_MAX_BYTES + 1);
    assert.ok(xzDecompress(streamed.file).equals(nixStoreDump(tree)));
    assert.equal(streamed.fileHash, nixSha256(fs.readFileSync(streamed.file)));
    assert.deepEqual({ narHash: streamed.narHash, narSize: streamed.narSize }, { narHash: info.narHash, narSize: info.narSize });
  });

  it('a path that is not in the store is an error, and leaves no file behind', async () => {
    const dataDir = tempDir('ringmaster-nar-data-');
    const missing = `/nix/store/${'0'.repeat(32)}-ringmaster-missing-${unique}`;
    await assert.rejects(compressNar(dataDir, missing, 100), /ENOENT|no such file/i);
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'nix-cache', 'tmp')), []);
  });
});
