import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { WireReader, wireInt, wireString, wireStrings } from '../../lib/nix-wire';
import { noSubstitutersArgs } from '../realise/nix-process';

/**
 * Questions to the local store through one long-lived `nix-store --serve` process (the protocol Hydra's
 * queue runner speaks to its builders), instead of a `nix-store` process per question: each spawn of
 * the worker forks a large process and blocks its event loop for tens of milliseconds, and a busy queue
 * asks hundreds of validity questions a minute.
 *
 * The process is started on the first question and again after it dies; questions go one at a time.
 * Nix's in-memory path-info cache is switched off (both TTLs 0), so an answer is never older than the
 * question: a path built or collected meanwhile is seen as it is now.
 */

const SERVE_MAGIC_1 = 0x390c9deb;
const SERVE_MAGIC_2 = 0x5452eecb;
/** Protocol 2.6: path infos carry the NAR hash, content address and signatures (Nix 2.8 speaks 2.7). */
const CLIENT_VERSION = 0x206;
const CMD_QUERY_VALID_PATHS = 1;
const CMD_QUERY_PATH_INFOS = 2;
const CMD_DUMP_STORE_PATH = 3;
const CMD_IMPORT_PATHS = 4;
const CMD_QUERY_CLOSURE = 7;
/** Ends each path's metadata in the `nix-store --export` format that `cmdImportPaths` reads. */
const EXPORT_MAGIC = 0x4558494e;
/** A question that takes longer than this stops the process (it is started again for the next one). */
const QUESTION_TIMEOUT_MS = 120_000;

/** What the store records of a valid path. */
export interface ServedPathInfo {
  path: string;
  deriver: string | null;
  references: string[];
  narSize: number;
  /** `sha256:<base32>`, as narinfo files write it. */
  narHash: string;
  ca: string | null;
}

/** A syntactically valid store path (a malformed one makes `nix-store --serve` exit). */
const STORE_PATH = /^\/nix\/store\/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]+$/;

export function isStorePathName(path: string): boolean {
  return STORE_PATH.test(path);
}

/**
 * Where a `nix-store --serve` runs: a local child process, or a channel to a builder (see
 * remote-store-serve.ts). Questions go to `input`; answers come from `output`.
 */
export interface ServeTransport {
  input: Writable;
  output: Readable;
  /** Its last words (stderr), kept short. */
  stderr: string[];
  /** Settles when the process has ended and its streams have closed. */
  closed: Promise<void>;
  /** Stops it (a local one by its PID). */
  stop(): void;
  /** Keeps this process's event loop open while an answer is awaited (between questions it need not). */
  hold?(): () => void;
}

interface Session {
  transport: ServeTransport;
  reader: WireReader;
}

/** Options every served store gets: Nix's in-memory path-info cache off (both TTLs 0), no substituters. */
export const SERVE_OPTIONS: readonly string[] = [...noSubstitutersArgs, '--option', 'narinfo-cache-negative-ttl', '0', '--option', 'narinfo-cache-positive-ttl', '0'];

/** Keeps a process's last words: the latest 20 chunks of its stderr. */
export function keepLastWords(lastWords: string[], chunk: Buffer): void {
  lastWords.push(chunk.toString());
  if (lastWords.length > 20) lastWords.shift();
}

/** How long a failed question waits for the process's last words on stderr (its stdout may end first). */
const LAST_WORDS_MS = 1_000;

/** Questions to one `nix-store --serve`, one at a time; it is started on the first and again after it ends. */
export class StoreServe {
  private session: Session | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly start: () => ServeTransport) {}

  /** The paths among `paths` that are valid in the local store. */
  async validPaths(paths: string[]): Promise<Set<string>> {
    const asked = paths.filter(isStorePathName);
    if (asked.length === 0) return new Set();
    return new Set(await this.ask([wireInt(CMD_QUERY_VALID_PATHS), wireInt(0), wireInt(0), ...wireStrings(asked)], (r) => r.strings()));
  }

  /** What the store records of each valid path among `paths` (invalid ones are left out). */
  async pathInfos(paths: string[]): Promise<Map<string, ServedPathInfo>> {
    const asked = paths.filter(isStorePathName);
    const infos = new Map<string, ServedPathInfo>();
    if (asked.length === 0) return infos;
    await this.ask([wireInt(CMD_QUERY_PATH_INFOS), ...wireStrings(asked)], async (r) => {
      for (;;) {
        const path = await r.string();
        if (path === '') return;
        const deriver = await r.string();
        const references = await r.strings();
        await r.int(); // download size (the NAR size here)
        const narSize = await r.int();
        const narHash = await r.string();
        const ca = await r.string();
        await r.strings(); // signatures
        infos.set(path, { path, deriver: deriver || null, references, narSize, narHash, ca: ca || null });
      }
    });
    return infos;
  }

  /** The closure of `paths` (every path they refer to, transitively, and themselves), in no particular order. */
  async closure(paths: string[]): Promise<string[]> {
    const asked = paths.filter(isStorePathName);
    if (asked.length === 0) return [];
    return this.ask([wireInt(CMD_QUERY_CLOSURE), wireInt(0), ...wireStrings(asked)], (r) => r.strings());
  }

  /**
   * Streams the NAR of a valid path to `sink`, as the store serialises it: exactly `narSize` bytes (its
   * path info's), which is how the answer's end is known.
   */
  async dumpPath(path: string, narSize: number, sink: (chunk: Buffer) => void | Promise<void>): Promise<void> {
    if (!isStorePathName(path)) throw new Error(`not a store path: ${path}`);
    await this.converse(async ({ write, reader }) => {
      await write([wireInt(CMD_DUMP_STORE_PATH), ...wireString(path)]);
      await reader.forward(narSize, sink);
      // A transfer takes as long as it takes: the caller limits it (a builder's transfer timeout).
    }, null);
  }

  /**
   * Imports paths into this store (the process must serve with `--write`), in the order given (each
   * after its references), their NARs streamed by `nar`, in the `nix-store --export` format; answers
   * once the store has added them all. Paths it holds already are left as they are.
   */
  async importPaths(infos: ServedPathInfo[], nar: (info: ServedPathInfo, sink: (chunk: Buffer) => Promise<void>) => Promise<void>): Promise<void> {
    if (infos.length === 0) return;
    await this.converse(async ({ write, reader }) => {
      await write([wireInt(CMD_IMPORT_PATHS)]);
      for (const info of infos) {
        await write([wireInt(1)]);
        await nar(info, (chunk) => write([chunk]));
        await write([wireInt(EXPORT_MAGIC), ...wireString(info.path), ...wireStrings(info.references), ...wireString(info.deriver ?? ''), wireInt(0)]);
      }
      await write([wireInt(0)]);
      const done = await reader.int();
      if (done !== 1) throw new Error(`the import answered ${done}`);
    }, null);
  }

  /** Stops the process. */
  close(): void {
    const session = this.session;
    this.session = undefined;
    if (session) stopSession(session);
  }

  /** Sends one question and reads its answer, after every question asked before it. */
  private ask<T>(question: Buffer[], answer: (reader: WireReader) => Promise<T>): Promise<T> {
    return this.converse(async ({ write, reader }) => {
      await write(question);
      return answer(reader);
    });
  }

  /**
   * One exchange with the process, after every exchange begun before it: what `talk` writes (waiting while
   * the process's input is full) and reads. A failure ends the process (the conversation is out of step).
   */
  private converse<T>(talk: (io: { write: (parts: Buffer[]) => Promise<void>; reader: WireReader }) => Promise<T>, timeoutMs: number | null = QUESTION_TIMEOUT_MS): Promise<T> {
    const run = async () => {
      const session = await this.open();
      const timer = timeoutMs === null ? undefined : setTimeout(() => session.reader.end(new Error(`nix-store --serve gave no answer in ${timeoutMs / 1000} s`)), timeoutMs);
      const input = session.transport.input;
      const write = async (parts: Buffer[]) => {
        if (input.write(parts.length === 1 ? parts[0] : Buffer.concat(parts))) return;
        await new Promise<void>((resolve, reject) => {
          const onDrain = () => {
            cleanup();
            resolve();
          };
          const onClose = () => {
            cleanup();
            reject(new Error('its input closed'));
          };
          const cleanup = () => {
            input.off('drain', onDrain);
            input.off('close', onClose);
          };
          input.on('drain', onDrain);
          input.on('close', onClose);
        });
      };
      try {
        return await whileAwaitingAnswer(session.transport, () => talk({ write, reader: session.reader }));
      } catch (err) {
        // The conversation is out of step or the process is gone: the next question starts a new one.
        if (this.session === session) this.close();
        await Promise.race([session.transport.closed, new Promise((resolve) => setTimeout(resolve, LAST_WORDS_MS).unref())]);
        const stderr = session.transport.stderr.join('').trim().slice(-500);
        throw new Error(`nix-store --serve: ${(err as Error).message}${stderr ? `: ${stderr}` : ''}`);
      } finally {
        clearTimeout(timer);
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async open(): Promise<Session> {
    if (this.session) return this.session;
    const transport = this.start();
    const session: Session = { transport, reader: new WireReader(transport.output) };
    void transport.closed.then(() => {
      session.reader.end(new Error('the process ended'));
      if (this.session === session) this.session = undefined;
    });
    this.session = session;
    try {
      await whileAwaitingAnswer(transport, async () => {
        transport.input.write(wireInt(SERVE_MAGIC_1));
        const magic = await session.reader.int();
        if (magic !== SERVE_MAGIC_2) throw new Error(`protocol mismatch (magic ${magic.toString(16)})`);
        await session.reader.int(); // the server's protocol version
        transport.input.write(wireInt(CLIENT_VERSION));
      });
      return session;
    } catch (err) {
      if (this.session === session) this.close();
      throw err;
    }
  }
}

/** A `nix-store --serve` child of this process. `storeArgs`: which store, when not the default one (e.g. `['--store', '/some/root']`). */
function localServeTransport(storeArgs: readonly string[]): ServeTransport {
  const child = spawn('nix-store', ['--serve', ...storeArgs, ...SERVE_OPTIONS], { stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  const output = child.stdout!;
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  child.stderr!.on('data', (chunk: Buffer) => keepLastWords(stderr, chunk));
  // A failure to spawn ends the answers (the reader hears the stream's error).
  child.on('error', (err) => output.destroy(err));
  child.stdin!.on('error', () => undefined);
  // Neither the process nor its pipes keep this one alive; when this one exits, its stdin closes and it ends.
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as { unref?: () => void }).unref?.();
  return {
    input: child.stdin!,
    output,
    stderr,
    closed,
    stop() {
      child.stdin?.end();
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
      }
    },
    hold() {
      const stdout = output as unknown as { ref(): void; unref(): void };
      stdout.ref();
      return () => stdout.unref();
    },
  };
}

/** The local store (or the one `storeArgs` name) through a `nix-store --serve` child of this process. */
export class LocalStoreServe extends StoreServe {
  constructor(storeArgs: readonly string[] = []) {
    super(() => localServeTransport(storeArgs));
  }
}

/** Runs `work` with the transport holding this one's event loop open: between questions it does not. */
async function whileAwaitingAnswer<T>(transport: ServeTransport, work: () => Promise<T>): Promise<T> {
  const release = transport.hold?.();
  try {
    return await work();
  } finally {
    release?.();
  }
}

function stopSession(session: Session): void {
  session.reader.end(new Error('closed'));
  session.transport.stop();
}

/** This process's one connection to its local store. */
export const localStore = new LocalStoreServe();

/** The local store's `nix-store --serve --write`, which imports what builders send back (started on first use). */
export const localStoreWriter = new LocalStoreServe(['--write']);
