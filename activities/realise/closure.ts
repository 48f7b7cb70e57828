import fs from 'node:fs';
import { PassThrough } from 'node:stream';
import { chunkPaths, NixCommandError, runNixStore, spawnNixStore, storePathLines, waitForExit } from './nix-process';
import { BuilderConnectionError, type BuilderConnection } from './ssh-connection';
import { readDerivation, type DerivationInfo } from '../nix/drv';
import { CoalescedQuery } from '../../lib/coalesced-query';
import { localStore, localStoreWriter, type StoreServe } from '../nix/store-serve';
import { dependenciesFirst } from '../nix/dependencies-first';

/** `nix-store --store X` on the builder, or plain `nix-store` for its default store. */
export function remoteNixStore(remoteStore: string | null | undefined): string[] {
  return remoteStore ? ['nix-store', '--store', remoteStore] : ['nix-store'];
}

/**
 * Nix (2.8 and later, NixOS/nix#15987) can fail at once with "SQLite database '…' is busy" while it opens
 * the builder's database and another Nix process there (a batch's `--realise`) holds it: a moment's
 * contention, not a fault of the builder. The read-only questions below ask again, a few times.
 */
const SQLITE_BUSY = /SQLite database '[^']*' is busy/;
const BUSY_RETRIES = [100, 300, 1_000, 3_000];

/** Runs a read-only `nix-store` question on the builder: its stdout, or a builder error. */
async function remoteCollect(conn: BuilderConnection, args: string[]): Promise<string> {
  let result = await conn.execCollect(args);
  for (const delayMs of BUSY_RETRIES) {
    if (result.code === 0 || !SQLITE_BUSY.test(result.stderr)) break;
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    result = await conn.execCollect(args);
  }
  if (result.code !== 0) {
    throw new BuilderConnectionError(`on the builder, ${args.slice(0, 5).join(' ')}… exited with ${result.code ?? result.signal ?? 'no status'}: ${result.stderr.trim().slice(-500)}`);
  }
  return result.stdout;
}

/** The closure of `paths` in the local store, dependencies first. */
export async function localClosure(paths: string[]): Promise<string[]> {
  if (paths.length === 0) return [];
  const closure: string[] = [];
  const seen = new Set<string>();
  for (const chunk of chunkPaths(paths)) {
    for (const p of storePathLines(await runNixStore(['--query', '--requisites', ...chunk]))) {
      if (!seen.has(p)) {
        seen.add(p);
        closure.push(p);
      }
    }
  }
  return closure;
}

/**
 * Whether the local store lives on this filesystem (the default store, directly or through the
 * daemon), so that a store path with no file is surely not valid. Not so for a chroot or remote store.
 */
function storeIsThisFilesystem(): boolean {
  const remote = process.env.NIX_REMOTE ?? '';
  return remote === '' || remote === 'daemon' || remote === 'auto' || remote === 'local';
}

/**
 * Which of `paths` are not valid in the local store. A path with no file at all is not valid: only the
 * paths that exist are asked of `nix-store --check-validity` (none, for what has never been built).
 */
export async function locallyInvalidPaths(paths: string[]): Promise<Set<string>> {
  const invalid = new Set<string>();
  let toAsk = paths;
  if (storeIsThisFilesystem()) {
    toAsk = [];
    for (const p of paths) {
      // lstat, not exists: a valid store path may be a symlink whose target is missing.
      if (fs.lstatSync(p, { throwIfNoEntry: false })) toAsk.push(p);
      else invalid.add(p);
    }
  }
  for (const p of await invalidAmongExisting.ask(toAsk)) invalid.add(p);
  return invalid;
}

/**
 * The validity of paths that exist on disk, asked of the local store's `nix-store --serve` for every
 * concurrent caller at once: while one question is out, the next callers' paths wait and go together
 * in the next one (many derivations planned at the same moment ask a few questions, not one each).
 */
const invalidAmongExisting = new CoalescedQuery<string>(async (paths) => {
  const valid = await localStore.validPaths(paths);
  return new Set(paths.filter((p) => !valid.has(p)));
});

/** Which of `paths` are not valid in the builder's store. */
export async function remotelyInvalidPaths(conn: BuilderConnection, paths: string[], remoteStore?: string | null): Promise<Set<string>> {
  const invalid = new Set<string>();
  for (const chunk of chunkPaths(paths)) {
    const out = await remoteCollect(conn, [...remoteNixStore(remoteStore), '--check-validity', '--print-invalid', ...chunk]);
    for (const p of storePathLines(out)) invalid.add(p);
  }
  return invalid;
}

/**
 * Sends the closure of `paths` to the builder: only the paths its store lacks travel, as
 * `nix-store --export` here piped into `nix-store --import` there, dependencies first.
 */
export async function copyClosureTo(conn: BuilderConnection, paths: string[], remoteStore?: string | null): Promise<{ sent: string[] }> {
  const closure = await localClosure(paths);
  if (closure.length === 0) return { sent: [] };
  const invalid = await remotelyInvalidPaths(conn, closure, remoteStore);
  const missing = closure.filter((p) => invalid.has(p));
  for (const chunk of chunkPaths(missing, 1_000_000)) {
    const exporter = spawnNixStore(['--export', ...chunk]);
    const stderr: Buffer[] = [];
    exporter.stderr!.on('data', (b: Buffer) => stderr.push(b));
    // Piped at once: Node discards a child's unread stdout when the child exits before anyone reads it.
    const exportStream = exporter.stdout!.pipe(new PassThrough());
    const exported = waitForExit(exporter);
    let imported;
    try {
      imported = await conn.execCollect([...remoteNixStore(remoteStore), '--import'], { stdin: exportStream });
    } catch (err) {
      exporter.kill('SIGKILL');
      throw err;
    }
    if (imported.code !== 0) {
      // The builder stopped reading: the local export would block on a full pipe forever.
      exporter.kill('SIGKILL');
      await exported;
      throw new BuilderConnectionError(`nix-store --import on the builder exited with ${imported.code ?? imported.signal ?? 'no status'}: ${imported.stderr.trim().slice(-500)}`);
    }
    const { code } = await exported;
    if (code !== 0) throw new NixCommandError(['--export'], code, Buffer.concat(stderr).toString('utf8'));
  }
  return { sent: missing };
}

/**
 * Fetches the closure of `paths` (valid in the builder's store) into the local store: only the paths
 * missing here travel, through the builder's store session (`served`) into the local
 * `nix-store --serve --write`, or without one as `nix-store --export` there piped into `nix-store --import` here.
 */
export async function copyClosureFrom(conn: BuilderConnection, paths: string[], remoteStore?: string | null, served?: StoreServe): Promise<{ received: string[] }> {
  if (paths.length === 0) return { received: [] };
  const closure: string[] = [];
  const seen = new Set<string>();
  const add = (p: string) => {
    if (!seen.has(p)) {
      seen.add(p);
      closure.push(p);
    }
  };
  // The builder's store session answers without a process per question; `--import` needs each path's
  // references valid before it, so what travels is put in dependency order from their path infos.
  if (served) for (const p of await served.closure(paths)) add(p);
  else for (const chunk of chunkPaths(paths)) for (const p of storePathLines(await remoteCollect(conn, [...remoteNixStore(remoteStore), '--query', '--requisites', ...chunk]))) add(p);
  const invalid = await locallyInvalidPaths(closure);
  const missing = closure.filter((p) => invalid.has(p));
  if (served && missing.length > 0) {
    // Through the two sessions (issue 6): each NAR dumped by the builder's `nix-store --serve` goes straight
    // into the local `nix-store --serve --write`, framed as `--export` frames it, with the path info the
    // builder gave; no process on either side per fetch.
    const infos = await served.pathInfos(missing);
    const lost = missing.find((p) => !infos.has(p));
    if (lost) throw new BuilderConnectionError(`the builder no longer has ${lost}`);
    const ordered = dependenciesFirst(missing, infos).map((p) => infos.get(p)!);
    await localStoreWriter.importPaths(ordered, (info, sink) => served.dumpPath(info.path, info.narSize, sink));
    return { received: missing };
  }
  for (const chunk of chunkPaths(missing)) {
    const importer = spawnNixStore(['--import'], ['pipe', 'ignore', 'pipe']);
    const stderr: Buffer[] = [];
    importer.stderr!.on('data', (b: Buffer) => stderr.push(b));
    importer.stdin!.on('error', () => undefined); // reported through the exit code
    const imported = waitForExit(importer);
    // If the local import ends first (an error), nothing reads the channel any more and it would never
    // close: give it a moment to finish on its own, then abort the remote export. An import that
    // succeeded read the stream to its end marker: every path arrived, and the channel is not waited for
    // (its close sometimes lagged by seconds behind the remote command's end).
    const stalled = new AbortController();
    void imported.then(({ code }) => setTimeout(() => stalled.abort(), code === 0 ? 200 : 5000).unref());
    const remoteErr: Buffer[] = [];
    let exported;
    try {
      exported = await conn.exec([...remoteNixStore(remoteStore), '--export', ...chunk], { stdout: importer.stdin!, onStderr: (b) => remoteErr.push(b), signal: stalled.signal });
    } catch (err) {
      importer.kill('SIGKILL');
      throw err;
    }
    if (exported.code !== 0 && !(stalled.signal.aborted && (await imported).code === 0)) {
      importer.kill('SIGKILL');
      await imported;
      throw new BuilderConnectionError(`nix-store --export on the builder exited with ${exported.code ?? exported.signal ?? 'no status'}: ${Buffer.concat(remoteErr).toString('utf8').trim().slice(-500)}`);
    }
    const { code } = await imported;
    if (code !== 0) throw new NixCommandError(['--import'], code, Buffer.concat(stderr).toString('utf8'));
  }
  return { received: missing };
}

/**
 * The NAR size of each set's closure, with one closure question and one path-info question over the
 * union of all sets (instead of two processes per set).
 */
export async function closureSizes(sets: string[][]): Promise<number[]> {
  const info = await localStore.pathInfos(await localStore.closure([...new Set(sets.flat())]));
  return sets.map((set) => {
    const seen = new Set<string>();
    const stack = [...set];
    let total = 0;
    while (stack.length) {
      const p = stack.pop()!;
      if (seen.has(p)) continue;
      seen.add(p);
      const i = info.get(p);
      if (!i) continue;
      total += i.narSize;
      stack.push(...i.references);
    }
    return total;
  });
}

/**
 * The derivations that realising `top` builds, dependencies first, `top` last, each `.drv` read once:
 * the derivation closure comes from the `.drv` files themselves (no `nix-store --query --requisites`),
 * with one validity check over all their outputs. A derivation whose outputs are all valid is left
 * out and not descended into (Nix does not build its inputs either); `top` is always in.
 */
export async function derivationsToBuild(top: string): Promise<{ order: string[]; parsed: Map<string, DerivationInfo> }> {
  const parsed = new Map<string, DerivationInfo>();
  let level = [top];
  while (level.length > 0) {
    const infos = await Promise.all(level.map((d) => readDerivation(d)));
    level.forEach((d, i) => parsed.set(d, infos[i]));
    level = [...new Set(infos.flatMap((info) => info.inputDrvs))].filter((d) => !parsed.has(d));
  }
  const invalid = await locallyInvalidPaths([...parsed.values()].flatMap((info) => Object.values(info.outputs)));
  const needed = (d: string) => d === top || Object.values(parsed.get(d)!.outputs).some((o) => invalid.has(o));

  // Depth-first post-order over the needed derivations, iterative (a chain may be thousands deep).
  const order: string[] = [];
  const visited = new Set<string>([top]);
  const stack: Array<{ drv: string; next: number }> = [{ drv: top, next: 0 }];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1];
    const inputs = parsed.get(frame.drv)!.inputDrvs;
    if (frame.next < inputs.length) {
      const input = inputs[frame.next++];
      if (!visited.has(input) && needed(input)) {
        visited.add(input);
        stack.push({ drv: input, next: 0 });
      }
    } else {
      stack.pop();
      order.push(frame.drv);
    }
  }
  return { order, parsed };
}
