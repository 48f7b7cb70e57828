import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { check as xzCheck, xzAsync } from 'node-liblzma';
import { nixSha256Hash } from '../../lib/binary-cache/nix-base32';
import { narFilePath } from '../../lib/binary-cache/nar-files';
import { narOfPath } from '../../lib/binary-cache/nar-writer';
import { waitForExit } from '../realise/nix-process';

/** xz preset for stored NARs: 3 compresses several times faster than the default 6 for a few percent more bytes. */
export const XZ_PRESET = 3;

/**
 * xz preset for NARs compressed in-process (at most IN_PROCESS_NAR_MAX_BYTES): preset 0's 256 KiB
 * dictionary needs about 3 MiB of encoder memory where preset 3 takes about 32 MiB, which the C
 * allocator of each thread-pool thread then kept (the worker's peak RSS in `bench/ten-thousand.ts 500`:
 * 717 MB with preset 3, against 569 MB spawning xz). A small NAR hardly compresses better with a
 * larger dictionary.
 */
export const SMALL_NAR_XZ_PRESET = 0;

/**
 * A store path whose NAR (its `narSize` in `nix path-info`) is at most this many bytes is serialised and
 * compressed inside the worker: spawning `nix-store --dump` and `xz` forks the whole worker process and
 * stalls its event loop for every path, which costs far more than the work on a small path.
 * Larger paths are streamed through those processes, never held in memory.
 */
export const IN_PROCESS_NAR_MAX_BYTES = 4 * 1024 * 1024;

export interface CompressedNar {
  narHash: string;
  narSize: number;
  fileHash: string;
  fileSize: number;
  compression: 'xz';
  file: string;
}

/**
 * Serialises `storePath` as a NAR and compresses it with xz (CRC64, one thread; preset 3, or 0 for a
 * small NAR compressed in-process) into the cache's NAR folder, named by the compressed file's hash. The NAR's own
 * hash and size are measured on the way, so the caller can check them against the store's.
 * `narSize` (the store's) chooses how: in-process up to IN_PROCESS_NAR_MAX_BYTES, spawned and streamed beyond.
 */
export async function compressNar(dataDir: string, storePath: string, narSize: number): Promise<CompressedNar> {
  return narSize <= IN_PROCESS_NAR_MAX_BYTES ? compressNarInProcess(dataDir, storePath) : compressNarStreaming(dataDir, storePath);
}

/** The NAR written by `narOfPath` and compressed by liblzma on libuv's thread pool: no process spawned. */
async function compressNarInProcess(dataDir: string, storePath: string): Promise<CompressedNar> {
  const temp = scratchFile(dataDir, storePath);
  try {
    const nar = await narOfPath(storePath);
    const compressed = await xzAsync(nar, { preset: SMALL_NAR_XZ_PRESET, check: xzCheck.CRC64, threads: 1 });
    await fsp.writeFile(temp, compressed, { mode: 0o644 });
    return moveIntoCache(dataDir, temp, { narHash: nixSha256(nar), narSize: nar.length, fileHash: nixSha256(compressed), fileSize: compressed.length });
  } catch (err) {
    await fsp.rm(temp, { force: true });
    throw err;
  }
}

/** `nix-store --dump | xz` (both spawned with argument arrays, streamed, never held in memory). */
async function compressNarStreaming(dataDir: string, storePath: string): Promise<CompressedNar> {
  const temp = scratchFile(dataDir, storePath);
  const dump = spawn('nix-store', ['--dump', storePath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const xz = spawn('xz', ['--compress', '--stdout', `-${XZ_PRESET}`, '--threads=1', '--check=crc64'], { stdio: ['pipe', 'pipe', 'pipe'] });
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
    return moveIntoCache(dataDir, temp, { narHash: nar.nixHash(), narSize: nar.size, fileHash: file.nixHash(), fileSize: file.size });
  } catch (err) {
    dump.kill('SIGKILL');
    xz.kill('SIGKILL');
    await Promise.allSettled([dumpExit, xzExit]);
    fs.rmSync(temp, { force: true });
    throw err;
  }
}

/** A fresh file name in the cache's scratch folder, on the same file system as the NAR folder. */
function scratchFile(dataDir: string, storePath: string): string {
  const scratch = path.join(dataDir, 'nix-cache', 'tmp');
  fs.mkdirSync(scratch, { recursive: true });
  return path.join(scratch, `${path.basename(storePath)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.nar.xz`);
}

/** Renames the finished scratch file to its name in the cache. */
function moveIntoCache(dataDir: string, temp: string, sums: Omit<CompressedNar, 'compression' | 'file'>): CompressedNar {
  const target = narFilePath(dataDir, sums.fileHash, 'xz');
  fs.mkdirSync(path.dirname(target), { recursive: true });
  // Same bytes, same name: a concurrent publisher of the same NAR renames an identical file over it.
  fs.renameSync(temp, target);
  return { ...sums, compression: 'xz', file: target };
}

function nixSha256(bytes: Buffer): string {
  return nixSha256Hash(crypto.createHash('sha256').update(bytes).digest());
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
    return nixSha256Hash(this.hash.digest());
  }
}
