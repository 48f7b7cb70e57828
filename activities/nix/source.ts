import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { gitEnvironment } from '../../lib/git-environment';
import { runProcess } from '../../lib/process-runner';
import { createTurns } from '../../lib/turns';

export interface FetchGitSourceOptions {
  /** A git URL (file://, https://, ssh://, …) or a local path of a repository. */
  url: string;
  /** The branch to follow; null or absent: the remote's HEAD. */
  branch?: string | null;
  /** A commit (or any revision the mirror knows) to check out instead of the branch's tip. */
  revision?: string | null;
  /** Holds `mirrors/` (one bare mirror per URL) and `checkouts/` (one directory per commit). */
  cacheDir: string;
  /**
   * The revision is a full commit fetched before (an evaluation's recorded commit): when its checkout
   * is there already, it is answered without touching the mirror or the remote, and `branch` is
   * answered as given.
   */
  fetchedBefore?: boolean;
}

export interface GitSource {
  /** The checked-out tree (no .git inside); shared by every caller of the same commit: treat it as read-only. */
  path: string;
  /** The full commit hash. */
  commit: string;
  /** The branch that was resolved (the remote HEAD's branch when none was asked for), or null for a detached HEAD. */
  branch: string | null;
}

export class GitSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GitSourceError';
  }
}

interface GitResult { stdout: string; stderr: string; code: number }

/** Runs git with an argument array and Ringmaster's git settings (no prompts, no system config, ssh in batch mode). */
async function git(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<GitResult> {
  const r = await runProcess('git', args, { cwd: opts.cwd, env: gitEnvironment(opts.env) });
  return { stdout: r.stdout, stderr: r.stderr, code: r.code };
}

/** A URL or path as git should see it: relative local paths become absolute. */
function normaliseUrl(url: string): string {
  const trimmed = url.trim();
  if (trimmed.startsWith('./') || trimmed.startsWith('../') || trimmed === '.') return path.resolve(trimmed);
  return trimmed;
}

function describe(url: string, branch: string | null | undefined, revision?: string | null): string {
  const parts = [`git input ${url}`];
  parts.push(branch ? `branch ${branch}` : 'default branch');
  if (revision) parts.push(`revision ${revision}`);
  return parts.join(', ');
}

function firstLines(text: string): string {
  return text.trim().split('\n').slice(0, 5).join('\n');
}

/** Serialises work on one mirror: within this process in turns, across processes by a lock file. */
const mirrorTurns = createTurns();

function withMirrorLock<T>(mirrorDir: string, work: () => Promise<T>): Promise<T> {
  return mirrorTurns(mirrorDir, async () => {
    const release = await acquireLockFile(`${mirrorDir}.lock`);
    try {
      return await work();
    } finally {
      await release();
    }
  });
}

/** An exclusive lock file holding the owner's PID; a lock whose owner is gone (or older than 30 min) is taken over. */
async function acquireLockFile(lockPath: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + 30 * 60_000;
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return async () => { await unlink(lockPath).catch(() => undefined); };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (await lockIsStale(lockPath)) {
      await unlink(lockPath).catch(() => undefined);
      continue;
    }
    if (Date.now() > deadline) throw new GitSourceError(`timed out waiting for the lock ${lockPath}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function lockIsStale(lockPath: string): Promise<boolean> {
  try {
    const [owner, info] = await Promise.all([readFile(lockPath, 'utf8'), stat(lockPath)]);
    if (Date.now() - info.mtimeMs > 30 * 60_000) return true;
    const pid = Number(owner);
    if (!Number.isInteger(pid) || pid <= 0) return Date.now() - info.mtimeMs > 10_000; // being written, or garbage
    if (pid === process.pid) return false;
    try {
      process.kill(pid, 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH';
    }
  } catch {
    return false; // gone already: the next open() will tell
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Clones the bare mirror of `url` (the first fetch of a URL): every ref, and HEAD naming the remote's default branch. */
async function cloneMirror(url: string, mirrorDir: string, what: string): Promise<void> {
  const temporary = `${mirrorDir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const cloned = await git(['clone', '--mirror', '--quiet', '--', url, temporary]);
  if (cloned.code !== 0) {
    await rm(temporary, { recursive: true, force: true });
    throw new GitSourceError(`cannot clone ${what}: ${firstLines(cloned.stderr)}`);
  }
  await rename(temporary, mirrorDir);
}

/** Brings an existing bare mirror of `url` up to date. */
async function fetchIntoMirror(url: string, mirrorDir: string, what: string): Promise<void> {
  const fetched = await git(['--git-dir', mirrorDir, 'fetch', '--prune', '--quiet', '--', url, '+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*',
    // Where forges publish pull/merge request heads (fork requests included), for webhook evaluations.
    '+refs/pull/*/head:refs/pull/*/head', '+refs/merge-requests/*/head:refs/merge-requests/*/head']);
  if (fetched.code !== 0) throw new GitSourceError(`cannot fetch ${what}: ${firstLines(fetched.stderr)}`);
}

/** The remote's HEAD: the branch it points at and its commit, from one `ls-remote` (nulls where the remote does not say). */
async function remoteHead(url: string): Promise<{ branch: string | null; commit: string | null }> {
  const listed = await git(['ls-remote', '--symref', '--', url, 'HEAD']);
  if (listed.code !== 0) return { branch: null, commit: null };
  const branch = /^ref: refs\/heads\/(\S+)\s+HEAD$/m.exec(listed.stdout)?.[1] ?? null;
  const commit = /^([0-9a-f]{40,64})\s+HEAD$/m.exec(listed.stdout)?.[1] ?? null;
  return { branch, commit };
}

/** The branch the mirror's HEAD points at (a fresh clone's HEAD is the remote's), or null. */
async function mirrorDefaultBranch(mirrorDir: string): Promise<string | null> {
  const local = await git(['--git-dir', mirrorDir, 'symbolic-ref', '--quiet', 'HEAD']);
  return /^refs\/heads\/(\S+)$/.exec(local.stdout.trim())?.[1] ?? null;
}

/**
 * A fresh mirror's HEAD: the branch it names (the remote's default branch) and that branch's commit, from
 * one git process instead of two (`symbolic-ref`, then `rev-parse`); null when HEAD names no branch with a
 * commit (an empty repository, a detached HEAD), which the callers then report as before.
 */
async function mirrorHead(mirrorDir: string): Promise<{ branch: string; commit: string } | null> {
  const parsed = await git(['--git-dir', mirrorDir, 'rev-parse', 'HEAD^{commit}', '--symbolic-full-name', 'HEAD']);
  if (parsed.code !== 0) return null;
  const [commit, ref] = parsed.stdout.trim().split('\n');
  const branch = /^refs\/heads\/(\S+)$/.exec(ref ?? '')?.[1];
  return branch && /^[0-9a-f]{40,64}$/.test(commit ?? '') ? { branch, commit } : null;
}

/** The branch the remote's HEAD points at, or (when the remote does not say) the mirror's, or null. */
async function remoteDefaultBranch(url: string, mirrorDir: string): Promise<string | null> {
  return (await remoteHead(url)).branch ?? (await mirrorDefaultBranch(mirrorDir));
}

/** Whether `commit`, a full hash, is a commit the mirror holds already. */
async function mirrorHolds(mirrorDir: string, commit: string): Promise<boolean> {
  return /^[0-9a-f]{40,64}$/.test(commit) && (await resolveCommit(mirrorDir, commit)) === commit;
}

async function resolveCommit(mirrorDir: string, rev: string): Promise<string | null> {
  const resolved = await git(['--git-dir', mirrorDir, 'rev-parse', '--verify', '--quiet', '--end-of-options', `${rev}^{commit}`]);
  const commit = resolved.stdout.trim();
  return resolved.code === 0 && /^[0-9a-f]{40,64}$/.test(commit) ? commit : null;
}

/** Checks the commit's tree out into `checkouts/<commit>`, unless it is already there. */
async function checkOut(mirrorDir: string, commit: string, checkoutsDir: string, what: string): Promise<string> {
  const target = path.join(checkoutsDir, commit);
  if (await exists(target)) return target;
  await mkdir(checkoutsDir, { recursive: true });
  const temporary = path.join(checkoutsDir, `.tmp-${commit}-${process.pid}-${randomBytes(4).toString('hex')}`);
  const indexFile = `${temporary}.index`;
  try {
    await mkdir(temporary);
    const env = { GIT_INDEX_FILE: indexFile };
    // One git process reads the tree into a fresh index and writes its files (`-u`): the trigger path waits for it.
    const read = await git(['--git-dir', mirrorDir, '--work-tree', temporary, 'read-tree', '--reset', '-u', commit], { env });
    if (read.code !== 0) throw new GitSourceError(`cannot check out ${commit} of ${what}: ${firstLines(read.stderr)}`);
    try {
      await rename(temporary, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      // Another caller checked the same commit out first; theirs is identical.
    }
  } finally {
    await rm(temporary, { recursive: true, force: true });
    await rm(indexFile, { force: true });
  }
  return target;
}

/**
 * Fetches a git input: updates the URL's bare mirror under cacheDir, resolves the branch (or the remote HEAD, or an
 * explicit revision) to a full commit, and returns a checkout of that commit (shared per commit, reused when present).
 */
export async function fetchGitSource(opts: FetchGitSourceOptions): Promise<GitSource> {
  const url = normaliseUrl(opts.url);
  if (url === '') throw new GitSourceError('the git input has an empty URL');
  if (url.startsWith('-')) throw new GitSourceError(`the git URL ${url} is not valid`);
  const cacheDir = path.resolve(opts.cacheDir);
  const mirrorsDir = path.join(cacheDir, 'mirrors');
  await mkdir(mirrorsDir, { recursive: true });
  const mirrorDir = path.join(mirrorsDir, `${createHash('sha256').update(url).digest('hex').slice(0, 32)}.git`);
  const what = describe(url, opts.branch, opts.revision);
  if (opts.fetchedBefore && opts.revision && /^[0-9a-f]{40,64}$/.test(opts.revision)) {
    const checkout = path.join(cacheDir, 'checkouts', opts.revision);
    if (await exists(checkout)) return { path: checkout, commit: opts.revision, branch: opts.branch ?? null };
  }

  const { commit, branch } = await withMirrorLock(mirrorDir, async () => {
    if (opts.branch) {
      const valid = await git(['check-ref-format', '--branch', opts.branch]);
      if (valid.code !== 0) throw new GitSourceError(`${what}: ${JSON.stringify(opts.branch)} is not a valid branch name`);
    }
    // Each remote round trip is on the trigger path: a fresh mirror has every ref and the remote's HEAD
    // already, and a commit the mirror holds needs no fetch.
    let branch = opts.branch || null;
    if (!(await exists(path.join(mirrorDir, 'HEAD')))) {
      await cloneMirror(url, mirrorDir, what);
      if (!branch && !opts.revision) {
        const head = await mirrorHead(mirrorDir);
        if (head) return head;
      }
      branch ??= await mirrorDefaultBranch(mirrorDir);
    } else if (opts.revision && (await mirrorHolds(mirrorDir, opts.revision))) {
      return { commit: opts.revision, branch: branch ?? (await remoteDefaultBranch(url, mirrorDir)) };
    } else if (!branch) {
      // The default branch's name and commit in one round trip: unchanged since the last fetch, no fetch.
      const head = await remoteHead(url);
      branch = head.branch;
      if (!opts.revision && branch && head.commit && (await mirrorHolds(mirrorDir, head.commit))) return { commit: head.commit, branch };
      await fetchIntoMirror(url, mirrorDir, what);
      branch ??= await mirrorDefaultBranch(mirrorDir);
    } else {
      await fetchIntoMirror(url, mirrorDir, what);
    }
    if (opts.revision) {
      const commit = await resolveCommit(mirrorDir, opts.revision);
      if (!commit) throw new GitSourceError(`${what}: the revision ${opts.revision} is not in the repository`);
      return { commit, branch };
    }
    if (!branch) throw new GitSourceError(`${what}: the repository has no default branch`);
    const commit = await resolveCommit(mirrorDir, `refs/heads/${branch}`);
    if (!commit) throw new GitSourceError(`${what}: the branch ${branch} does not exist`);
    return { commit, branch };
  });

  const checkout = await checkOut(mirrorDir, commit, path.join(cacheDir, 'checkouts'), what);
  return { path: checkout, commit, branch };
}

export interface InputsHashParts {
  commit: string;
  inputs: Array<{ name: string; type: string; value: string; revision?: string | null }>;
  nixExpression: string;
  flakeMode: boolean;
}

/** A sha256 (hex) of everything an evaluation depends on; the order of the inputs does not matter. */
export function inputsHash(parts: InputsHashParts): string {
  const inputs = parts.inputs
    .map((input) => [input.name, input.type, input.value, input.revision ?? null] as const)
    .sort((x, y) => compareTuples(x, y));
  const canonical = JSON.stringify({
    commit: parts.commit,
    flakeMode: parts.flakeMode,
    inputs,
    nixExpression: parts.nixExpression,
  });
  return createHash('sha256').update(canonical).digest('hex');
}

function compareTuples(x: readonly (string | null)[], y: readonly (string | null)[]): number {
  for (let i = 0; i < x.length; i++) {
    const a = x[i] ?? '';
    const b = y[i] ?? '';
    if (a !== b) return a < b ? -1 : 1;
    if (x[i] !== y[i]) return x[i] === null ? -1 : 1;
  }
  return 0;
}
