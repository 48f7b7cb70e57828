import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { StringDecoder } from 'node:string_decoder';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import lockfile from 'proper-lockfile';
import { createTurns } from './turns';

const gzip = promisify(zlib.gzip);
/** A live log up to this size is compressed in memory (one read, one write); a larger one is streamed. */
const COMPRESS_IN_MEMORY_BYTES = 4 * 1024 * 1024;
/** A live log up to this size is compressed synchronously (compressLiveNow): a deflate of 64 KiB takes about a millisecond. */
const COMPRESS_SYNC_BYTES = 64 * 1024;
/**
 * A build log's compression and its late appends, one after the other: a line appended to the live file
 * between the compression's read and its deletion of that file would be lost, and one appended after it
 * would start a live file beside the .gz. Within this process they queue on `logTurns`; across processes
 * (the batch that appends late lines on one worker, the build's workflow that compresses the log on
 * another) each also holds the log's lock, `<id>.log.lock` beside the live file (see `acrossProcesses`).
 */
const logTurns = createTurns();
/**
 * A lock directory left by a process that died holding it is taken over once it is this old: its holder
 * refreshes its time every LOCK_STALE_MS / 2 while it works (a streamed compression of a large log).
 */
const LOCK_STALE_MS = 10_000;
/** Log folders made by this process: a folder is made once, not before each log. */
const madeDirectories = new Set<string>();

/**
 * Where build logs live, the one place that knows it:
 * - while a build runs, its log grows in `<dataDir>/logs/<id[0..1]>/<id>.log` (the live file);
 * - when it ends, `BuildLogWriter.finish()` writes `<id>.log.gz` beside it, THEN deletes the live file,
 *   so at every instant at least one complete copy exists and a follower can switch without losing a line.
 */

const SAFE_BUILD_ID = /^[A-Za-z0-9][A-Za-z0-9-]*$/;

function checkBuildId(buildId: string): void {
  // Build IDs are UUIDs; refuse anything that could walk out of the logs folder.
  if (!SAFE_BUILD_ID.test(buildId) || buildId.length < 2) throw new Error(`not a build id: ${JSON.stringify(buildId)}`);
}

export function buildLogDirectory(dataDir: string, buildId: string): string {
  checkBuildId(buildId);
  return path.join(dataDir, 'logs', buildId.slice(0, 2));
}

/** `<dataDir>/logs/<first two characters of id>/<id>.log`: the log of a build while it runs. */
export function liveLogPath(dataDir: string, buildId: string): string {
  return path.join(buildLogDirectory(dataDir, buildId), `${buildId}.log`);
}

/** The finished log, gzip-compressed: `liveLogPath(...) + '.gz'`. */
export function compressedLogPath(dataDir: string, buildId: string): string {
  return `${liveLogPath(dataDir, buildId)}.gz`;
}

/** Appends a running build's log to its live file; `finish()` compresses it. */
export class BuildLogWriter {
  private tail: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly dataDir: string,
    readonly buildId: string,
    private readonly handle: fsp.FileHandle,
    /** Bytes in the live file so far (including what an earlier attempt wrote). */
    public bytes: number,
  ) {}

  /** Opens (or continues, for a retried activity) the live log of a build. */
  static async open(dataDir: string, buildId: string): Promise<BuildLogWriter> {
    const live = liveLogPath(dataDir, buildId);
    const dir = path.dirname(live);
    if (!madeDirectories.has(dir)) {
      await fsp.mkdir(dir, { recursive: true });
      madeDirectories.add(dir);
    }
    const handle = await fsp.open(live, 'a').catch(async (err: NodeJS.ErrnoException) => {
      // The folder went away (a data directory cleaned by hand): made again.
      if (err.code !== 'ENOENT') throw err;
      await fsp.mkdir(dir, { recursive: true });
      return fsp.open(live, 'a');
    });
    const { size } = await handle.stat();
    return new BuildLogWriter(dataDir, buildId, handle, size);
  }

  get livePath(): string {
    return liveLogPath(this.dataDir, this.buildId);
  }

  /** Appends text; calls are written in the order they were made, even when not awaited. */
  append(chunk: string): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`the log of build ${this.buildId} is already finished`));
    const data = Buffer.from(chunk, 'utf8');
    const write = this.tail.then(async () => {
      let offset = 0;
      while (offset < data.length) {
        const { bytesWritten } = await this.handle.write(data, offset, data.length - offset);
        offset += bytesWritten;
      }
      this.bytes += data.length;
    });
    this.tail = write.catch(() => {});
    return write;
  }

  /** Closes the live file without compressing it: a step wrote its part, the build finishes the log later. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tail;
    await this.handle.close();
  }

  /**
   * Closes the live file, writes `<id>.log.gz` (atomically, via a temporary file), then deletes the
   * live file. Returns the compressed path (to store in builds.log_path). Safe to call twice.
   */
  async finish(): Promise<string> {
    if (!this.closed) {
      this.closed = true;
      await this.tail;
      await this.handle.close();
    }
    const gz = await BuildLogWriter.compressLive(this.dataDir, this.buildId);
    if (gz === undefined) throw new Error(`the log of build ${this.buildId} has neither a live file nor a compressed one`);
    return gz;
  }

  /**
   * Writes a build's closed live log as `<id>.log.gz` (atomically, via a temporary file), then deletes
   * the live file; answers the compressed path, also when only that is left (finished before), and
   * undefined when the build has neither. What `finish()` does once the writer is closed, without
   * opening the live file for writing first.
   *
   * `lateLinesFromThisProcessOnly`: the caller is the batch that realised the build (it records the
   * results of the builds held back for it), so the late lines of this log can come only from this
   * process and the turns within it suffice; otherwise (the build's workflow, on any worker) the log's
   * lock across processes is held as well.
   */
  static compressLive(dataDir: string, buildId: string, { lateLinesFromThisProcessOnly = false } = {}): Promise<string | undefined> {
    const live = liveLogPath(dataDir, buildId);
    const compress = () => compressLiveNow(dataDir, buildId);
    // Without a live file there is nothing to compress: the .gz is answered as it is, and nothing is
    // written that a late line could miss.
    return logTurns(live, () => (lateLinesFromThisProcessOnly || !fs.existsSync(live) ? compress() : acrossProcesses(live, compress)));
  }

  /**
   * Appends text to a build's log after its writer was closed: a line that Nix sent after the batch had
   * found the build's outputs valid (the answer to the validity question can arrive before the build's
   * last lines are read). To the live file while the log has no compressed copy yet; else into the
   * compressed log, written again whole (atomically, via a temporary file), so it stays one gzip member.
   */
  static appendLate(dataDir: string, buildId: string, text: string): Promise<void> {
    const live = liveLogPath(dataDir, buildId);
    return logTurns(live, async () => {
      await fsp.mkdir(path.dirname(live), { recursive: true });
      return acrossProcesses(live, () => appendLateNow(dataDir, buildId, text));
    });
  }
}

/**
 * Runs `work` holding the log's lock across processes: the directory `<live>.lock`, made with mkdir
 * (atomic; proper-lockfile), waited for while another process holds it. Its system calls (mkdir, stat,
 * rmdir) run on libuv's thread pool: made synchronously they blocked the event loop about 2 ms per log
 * on a busy machine (ext4 allocates and frees a block for each directory). Both callers lock only once the
 * log's folder exists; if it went away meanwhile (a data directory cleaned by hand, as `open` allows for),
 * the log has neither a live file nor a .gz, and `work` runs unlocked: there is nothing to wait for.
 */
async function acrossProcesses<T>(live: string, work: () => Promise<T>): Promise<T> {
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(live, {
      realpath: false,
      lockfilePath: `${live}.lock`,
      stale: LOCK_STALE_MS,
      retries: { retries: 400, factor: 1.2, minTimeout: 5, maxTimeout: 100 },
      // Compromised (its time not refreshed within LOCK_STALE_MS: an event loop blocked that long): the
      // work goes on; the worst case is the race that the lock is there to prevent.
      onCompromised: () => undefined,
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return work();
    throw err;
  }
  try {
    return await work();
  } finally {
    try {
      await release();
    } catch {
      // Released already: the lock was compromised (see onCompromised) and may be another's now.
    }
  }
}

/**
 * Writes `<id>.log.gz` from the live file (via a temporary file, renamed into place), then deletes the live
 * file. The live file is opened once: a small one (most builds' logs, up to COMPRESS_SYNC_BYTES) is read and
 * deflated synchronously, since half a dozen system calls and a deflate of a few bytes cost far less than a
 * round trip through libuv's thread pool each (about 1.5 ms of CPU per log through the promise API); a
 * larger one in memory on the thread pool (up to COMPRESS_IN_MEMORY_BYTES), or streamed beyond.
 */
async function compressLiveNow(dataDir: string, buildId: string): Promise<string | undefined> {
  const live = liveLogPath(dataDir, buildId);
  const gz = compressedLogPath(dataDir, buildId);
  let fd: number;
  try {
    fd = fs.openSync(live, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return fs.existsSync(gz) ? gz : undefined;
  }
  const tmp = `${gz}.${process.pid}.tmp`;
  try {
    const { size } = fs.fstatSync(fd);
    if (size <= COMPRESS_SYNC_BYTES) fs.writeFileSync(tmp, zlib.gzipSync(fs.readFileSync(fd)));
    else if (size <= COMPRESS_IN_MEMORY_BYTES) await fsp.writeFile(tmp, await gzip(await readFd(fd)));
    else await pipeline(fs.createReadStream('', { fd, autoClose: false }), zlib.createGzip(), fs.createWriteStream(tmp));
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, gz);
  fs.rmSync(live, { force: true });
  return gz;
}

const readFd = promisify((fd: number, callback: (err: NodeJS.ErrnoException | null, data: Buffer) => void) => fs.readFile(fd, callback));

async function appendLateNow(dataDir: string, buildId: string, text: string): Promise<void> {
  const live = liveLogPath(dataDir, buildId);
  const gz = compressedLogPath(dataDir, buildId);
  const compressed = await readCompressed(gz);
  if (compressed === undefined) {
    await fsp.appendFile(live, text);
    return;
  }
  const tmp = `${gz}.${process.pid}.late.tmp`;
  await fsp.writeFile(tmp, await gzip(Buffer.concat([compressed, Buffer.from(text, 'utf8')])));
  await fsp.rename(tmp, gz);
}

async function readCompressed(gz: string): Promise<Buffer | undefined> {
  try {
    return zlib.gunzipSync(await fsp.readFile(gz));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function readLive(live: string): Promise<Buffer | undefined> {
  try {
    return await fsp.readFile(live);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The whole log of a build: the live file while it runs, else the compressed one; undefined when none. */
export async function readBuildLog(dataDir: string, buildId: string): Promise<string | undefined> {
  const live = await readLive(liveLogPath(dataDir, buildId));
  if (live) return live.toString('utf8');
  const gz = await readCompressed(compressedLogPath(dataDir, buildId));
  // The writer renames the .gz into place before it deletes the live file, so a live file that
  // vanished between the two reads left a complete .gz behind.
  return gz?.toString('utf8');
}

export interface FollowBuildLogOptions {
  /** Whether the build has ended (its log will not grow any more). */
  isFinished: () => Promise<boolean>;
  signal: AbortSignal;
  onChunk: (text: string) => void;
  /** How often to look for growth when no file event arrives (default 250 ms). */
  pollMs?: number;
}

/**
 * Sends what a build's log holds, then what is appended, until the build is finished and its live
 * file is gone (or complete); then sends the rest from the .gz (skipping the bytes already sent) and
 * resolves. Resolves early, quietly, when `signal` aborts.
 */
export async function followBuildLog(dataDir: string, buildId: string, opts: FollowBuildLogOptions): Promise<void> {
  const live = liveLogPath(dataDir, buildId);
  const gz = compressedLogPath(dataDir, buildId);
  const pollMs = opts.pollMs ?? 250;
  const decoder = new StringDecoder('utf8');
  let sent = 0;
  const emit = (buf: Buffer) => {
    if (buf.length === 0) return;
    sent += buf.length;
    const text = decoder.write(buf);
    if (text) opts.onChunk(text);
  };
  const flush = () => {
    const rest = decoder.end();
    if (rest) opts.onChunk(rest);
  };

  /** Reads the live file from `sent` to its end; false when it does not exist. */
  const drainLive = async (): Promise<boolean> => {
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(live, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    try {
      const buf = Buffer.alloc(64 * 1024);
      for (;;) {
        const { bytesRead } = await handle.read(buf, 0, buf.length, sent);
        if (bytesRead === 0) break;
        emit(Buffer.from(buf.subarray(0, bytesRead)));
        if (opts.signal.aborted) break;
      }
    } finally {
      await handle.close();
    }
    return true;
  };

  let wake: (() => void) | undefined;
  let watcher: fs.FSWatcher | undefined;
  const watchDirectory = () => {
    if (watcher) return;
    try {
      watcher = fs.watch(path.dirname(live), () => wake?.());
      watcher.on('error', () => {
        watcher?.close();
        watcher = undefined;
      });
    } catch {
      watcher = undefined; // the folder does not exist yet: polling covers it
    }
  };
  const onAbort = () => wake?.();
  opts.signal.addEventListener('abort', onAbort);

  try {
    while (!opts.signal.aborted) {
      // Ask first, read second: once the build is known finished, the files are in their final state.
      const finished = await opts.isFinished();
      if (opts.signal.aborted) return;
      const liveExists = await drainLive();
      if (opts.signal.aborted) return;
      if (finished) {
        if (!liveExists) {
          const all = await readCompressed(gz);
          if (all && all.length > sent) emit(all.subarray(sent));
        }
        flush();
        return;
      }
      watchDirectory();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          wake = undefined;
          resolve();
        }, pollMs);
        wake = () => {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        };
      });
    }
  } finally {
    opts.signal.removeEventListener('abort', onAbort);
    watcher?.close();
  }
}
