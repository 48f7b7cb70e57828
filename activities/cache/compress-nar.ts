import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { toNixBase32 } from '../../lib/binary-cache/nix-base32';
import { narFilePath } from '../../lib/binary-cache/nar-files';
import { waitForExit } from '../realise/nix-process';

/** xz preset for stored NARs: 3 compresses several times faster than the default 6 for a few percent more bytes. */
export const XZ_PRESET = '-3';

export interface CompressedNar {
  narHash: string;
  narSize: number;
  fileHash: string;
  fileSize: number;
  compression: 'xz';
  file: string;
}

/** Passes bytes through, hashing and counting them. */
class HashingCounter extends Transform {
  private readonly hash = crypto.createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }
  nixHash(): string {
    return `sha256:${toNixBase32(this.hash.digest())}`;
  }
}

/**
 * Serialises `storePath` with `nix-store --dump` and compresses it with `xz` (both spawned with argument
 * arrays, streamed, never held in memory) into the cache's NAR folder, named by the compressed file's hash.
 * The NAR's own hash and size are measured on the way, so the caller can check them against the store's.
 */
export async function compressNar(dataDir: string, storePath: string): Promise<CompressedNar> {
  const scratch = path.join(dataDir, 'nix-cache', 'tmp');
  fs.mkdirSync(scratch, { recursive: true });
  const temp = path.join(scratch, `${path.basename(storePath)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.nar.xz`);
  const dump = spawn('nix-store', ['--dump', storePath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const xz = spawn('xz', ['--compress', '--stdout', XZ_PRESET, '--threads=1', '--check=crc64'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const dumpErr: Buffer[] = [];
  const xzErr: Buffer[] = [];
  dump.stderr!.on('data', (b: Buffer) => dumpErr.push(b));
  xz.stderr!.on('data', (b: Buffer) => xzErr.push(b));
  const dumpExit = waitForExit(dump);
  const xzExit = waitForExit(xz);
  const nar = new HashingCounter();
  const file = new HashingCounter();
  try {
    await Promise.all([pipeline(dump.stdout!, nar, xz.stdin!), pipeline(xz.stdout!, file, fs.createWriteStream(temp, { mode: 0o644 }))]);
    const [d, x] = await Promise.all([dumpExit, xzExit]);
    if (d.code !== 0) throw new Error(`nix-store --dump ${storePath} exited with ${d.code ?? d.signal}: ${Buffer.concat(dumpErr).toString('utf8').trim().slice(-500)}`);
    if (x.code !== 0) throw new Error(`xz exited with ${x.code ?? x.signal}: ${Buffer.concat(xzErr).toString('utf8').trim().slice(-500)}`);
    const fileHash = file.nixHash();
    const target = narFilePath(dataDir, fileHash, 'xz');
    fs.mkdirSync(path.dirname(target), { recursive: true });
    // Same bytes, same name: a concurrent publisher of the same NAR renames an identical file over it.
    fs.renameSync(temp, target);
    return { narHash: nar.nixHash(), narSize: nar.size, fileHash, fileSize: file.size, compression: 'xz', file: target };
  } catch (err) {
    dump.kill('SIGKILL');
    xz.kill('SIGKILL');
    await Promise.allSettled([dumpExit, xzExit]);
    fs.rmSync(temp, { force: true });
    throw err;
  }
}
