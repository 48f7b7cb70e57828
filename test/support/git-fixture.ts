import { spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export interface GitFixtureRepo {
  /** The repository's working directory. */
  dir: string;
  /** Its file:// URL. */
  url: string;
  /** The commit the fixture was created with. */
  commit: string;
  /** Writes `content` to `file` (relative to dir), commits it on the current branch and returns the new commit. */
  commitChange(file: string, content: string): Promise<string>;
}

async function git(dir: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8').trim());
      else reject(new Error(`git ${args.join(' ')} failed (${code}): ${Buffer.concat(err).toString('utf8')}`));
    });
  });
}

/** Copies a fixture directory into a fresh temporary git repository (branch main) with one commit. */
export async function makeGitRepo(fromDir: string): Promise<GitFixtureRepo> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ringmaster-git-fixture-'));
  await cp(fromDir, dir, { recursive: true });
  await git(dir, ['init', '--quiet', '--initial-branch', 'main']);
  await git(dir, ['config', 'user.email', 'fixture@ringmaster.test']);
  await git(dir, ['config', 'user.name', 'Ringmaster fixture']);
  await git(dir, ['config', 'commit.gpgsign', 'false']);
  await git(dir, ['add', '--all']);
  await git(dir, ['commit', '--quiet', '--message', 'fixture']);
  const commit = await git(dir, ['rev-parse', 'HEAD']);
  return {
    dir,
    url: pathToFileURL(dir).href,
    commit,
    async commitChange(file: string, content: string): Promise<string> {
      const target = path.join(dir, file);
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, content);
      await git(dir, ['add', '--', file]);
      await git(dir, ['commit', '--quiet', '--message', `change ${file}`]);
      return git(dir, ['rev-parse', 'HEAD']);
    },
  };
}
