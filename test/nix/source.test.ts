import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cp, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { fetchGitSource, inputsHash } from '../../activities/nix/source';
import { makeGitRepo, type GitFixtureRepo } from '../support/git-fixture';

const fixtureDir = path.join(__dirname, '..', 'fixtures', 'jobset');

describe('git sources', () => {
  let repo: GitFixtureRepo;
  let cacheDir: string;
  before(async () => {
    repo = await makeGitRepo(fixtureDir);
    cacheDir = await mkdtemp(path.join(os.tmpdir(), 'ringmaster-source-cache-'));
  });
  after(async () => {
    await rm(cacheDir, { recursive: true, force: true });
    await rm(repo.dir, { recursive: true, force: true });
  });

  it('a file:// URL without a branch resolves the remote HEAD branch to its full commit and checks the tree out', async () => {
    const source = await fetchGitSource({ url: repo.url, cacheDir });
    assert.equal(source.commit, repo.commit);
    assert.match(source.commit, /^[0-9a-f]{40}$/);
    assert.equal(source.branch, 'main');
    assert.equal(await readFile(path.join(source.path, 'release.nix'), 'utf8'), await readFile(path.join(fixtureDir, 'release.nix'), 'utf8'));
    await assert.rejects(stat(path.join(source.path, '.git')), 'the checkout holds no .git');
  });

  it('the checkout holds nested folders, executable files and symbolic links as committed', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ringmaster-source-tree-'));
    await mkdir(path.join(dir, 'nested', 'deeper'), { recursive: true });
    await writeFile(path.join(dir, 'nested', 'deeper', 'file.txt'), 'deep\n');
    await writeFile(path.join(dir, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    await symlink('nested/deeper/file.txt', path.join(dir, 'link'));
    const tree = await makeGitRepo(dir);
    try {
      const source = await fetchGitSource({ url: tree.url, cacheDir });
      assert.equal(await readFile(path.join(source.path, 'nested', 'deeper', 'file.txt'), 'utf8'), 'deep\n');
      assert.equal((await stat(path.join(source.path, 'run.sh'))).mode & 0o111, 0o111, 'run.sh is executable');
      assert.equal((await stat(path.join(source.path, 'nested', 'deeper', 'file.txt'))).mode & 0o111, 0, 'file.txt is not');
      // (makeGitRepo copies the folder with fs.cp, which makes the link's target absolute.)
      assert.ok((await lstat(path.join(source.path, 'link'))).isSymbolicLink(), 'link is a symbolic link');
      assert.match(await readlink(path.join(source.path, 'link')), /nested\/deeper\/file\.txt$/);
      assert.equal(await readFile(path.join(source.path, 'link'), 'utf8'), 'deep\n');
    } finally {
      await rm(tree.dir, { recursive: true, force: true });
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a new commit on the branch changes the resolved commit, and each commit has its own checkout', async () => {
    const before = await fetchGitSource({ url: repo.url, branch: 'main', cacheDir });
    const next = await repo.commitChange('greeting', 'bonjour\n');
    const after = await fetchGitSource({ url: repo.url, branch: 'main', cacheDir });
    assert.notEqual(after.commit, before.commit);
    assert.equal(after.commit, next);
    assert.notEqual(after.path, before.path);
    assert.equal(await readFile(path.join(after.path, 'greeting'), 'utf8'), 'bonjour\n');
    await assert.rejects(stat(path.join(before.path, 'greeting')), 'the old checkout is unchanged');
  });

  it('an explicit revision is checked out even after the branch has moved on', async () => {
    const source = await fetchGitSource({ url: repo.url, branch: 'main', revision: repo.commit, cacheDir });
    assert.equal(source.commit, repo.commit);
    assert.equal(source.branch, 'main');
    await assert.rejects(stat(path.join(source.path, 'greeting')));
  });

  it("an evaluation's recorded commit (fetchedBefore) is answered from its checkout without reaching the remote", async () => {
    const fetched = await fetchGitSource({ url: repo.url, branch: 'main', revision: repo.commit, cacheDir });
    // A URL nothing answers at: only a lookup that never fetches can succeed with it.
    const gone = `${repo.url}-moved-away`;
    await assert.rejects(fetchGitSource({ url: gone, branch: 'main', revision: repo.commit, cacheDir }), 'without fetchedBefore, the remote is asked');
    const again = await fetchGitSource({ url: gone, branch: 'main', revision: repo.commit, cacheDir, fetchedBefore: true });
    assert.deepEqual(again, { path: fetched.path, commit: repo.commit, branch: 'main' });
  });

  it('a default branch unchanged since the last fetch is answered from the mirror, and a moved one is fetched', async () => {
    const fresh = await mkdtemp(path.join(os.tmpdir(), 'ringmaster-source-cache-'));
    const tagsOfMirror = async () => {
      const [mirror] = await readdir(path.join(fresh, 'mirrors'));
      return spawnSync('git', ['--git-dir', path.join(fresh, 'mirrors', mirror), 'tag', '--list'], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
    };
    try {
      const first = await fetchGitSource({ url: repo.url, cacheDir: fresh });
      // A ref the remote gains while its default branch stays put: only a fetch would bring it.
      assert.equal(spawnSync('git', ['-C', repo.dir, 'tag', 'unchanged-probe'], { encoding: 'utf8' }).status, 0);
      const unchanged = await fetchGitSource({ url: repo.url, cacheDir: fresh });
      assert.deepEqual(unchanged, first);
      assert.deepEqual(await tagsOfMirror(), [], 'the unchanged branch was answered without a fetch');
      const moved = await repo.commitChange('unchanged-probe', 'moved\n');
      const after = await fetchGitSource({ url: repo.url, cacheDir: fresh });
      assert.deepEqual([after.commit, after.branch], [moved, 'main']);
      assert.deepEqual(await tagsOfMirror(), ['unchanged-probe'], 'the moved branch was fetched');
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  it('a full revision the mirror holds already is answered without reaching the remote', async () => {
    const fresh = await mkdtemp(path.join(os.tmpdir(), 'ringmaster-source-cache-'));
    const copy = await mkdtemp(path.join(os.tmpdir(), 'ringmaster-source-copy-'));
    try {
      await cp(repo.dir, copy, { recursive: true });
      const url = pathToFileURL(copy).href;
      const first = await fetchGitSource({ url, branch: 'main', cacheDir: fresh });
      // The remote goes away: only an answer from the mirror can succeed now.
      await rm(copy, { recursive: true, force: true });
      const again = await fetchGitSource({ url, branch: 'main', revision: first.commit, cacheDir: fresh });
      assert.deepEqual(again, first);
      await assert.rejects(fetchGitSource({ url, branch: 'main', revision: 'f'.repeat(40), cacheDir: fresh }), /cannot fetch/, 'a revision the mirror lacks is fetched');
    } finally {
      await rm(fresh, { recursive: true, force: true });
      await rm(copy, { recursive: true, force: true });
    }
  });

  it('a checkout that is already there is reused', async () => {
    const first = await fetchGitSource({ url: repo.url, revision: repo.commit, cacheDir });
    const again = await fetchGitSource({ url: repo.url, revision: repo.commit, cacheDir });
    assert.equal(again.path, first.path);
  });

  it('a plain local path of a repository works like its file:// URL', async () => {
    const source = await fetchGitSource({ url: repo.dir, branch: 'main', cacheDir });
    const viaUrl = await fetchGitSource({ url: repo.url, branch: 'main', cacheDir });
    assert.equal(source.commit, viaUrl.commit);
  });

  it('an unknown branch fails with an error naming the URL and the branch', async () => {
    await assert.rejects(fetchGitSource({ url: repo.url, branch: 'no-such-branch', cacheDir }), (err: Error) => {
      assert.ok(err.message.includes(repo.url), err.message);
      assert.ok(err.message.includes('no-such-branch'), err.message);
      return true;
    });
  });

  it('a repository without a commit fails on its first fetch with an error naming its default branch', async () => {
    const empty = await mkdtemp(path.join(os.tmpdir(), 'ringmaster-empty-repo-'));
    try {
      assert.equal(spawnSync('git', ['init', '--quiet', '--initial-branch', 'trunk', empty]).status, 0);
      await assert.rejects(fetchGitSource({ url: pathToFileURL(empty).href, cacheDir }), (err: Error) => {
        assert.match(err.message, /the branch trunk does not exist/);
        return true;
      });
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('a URL that is no repository fails with an error naming it', async () => {
    const missing = `file://${path.join(os.tmpdir(), 'ringmaster-no-such-repo')}`;
    await assert.rejects(fetchGitSource({ url: missing, cacheDir }), (err: Error) => err.message.includes(missing));
  });

  it('concurrent fetches of the same URL all succeed and agree on the commit and the checkout', async () => {
    const fresh = await mkdtemp(path.join(os.tmpdir(), 'ringmaster-source-cache-'));
    try {
      const sources = await Promise.all(Array.from({ length: 6 }, () => fetchGitSource({ url: repo.url, cacheDir: fresh })));
      assert.equal(new Set(sources.map((s) => s.commit)).size, 1);
      assert.equal(new Set(sources.map((s) => s.path)).size, 1);
      assert.ok((await stat(path.join(sources[0].path, 'flake.nix'))).isFile());
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });
});

describe('inputsHash', () => {
  const parts = {
    commit: 'a'.repeat(40),
    nixExpression: 'release.nix',
    flakeMode: false,
    inputs: [
      { name: 'src', type: 'git', value: 'file:///srv/repo main', revision: 'b'.repeat(40) },
      { name: 'greeting', type: 'string', value: 'hello' },
    ],
  };

  it('is a sha256 in hex that does not depend on the order of the inputs', () => {
    const hash = inputsHash(parts);
    assert.match(hash, /^[0-9a-f]{64}$/);
    assert.equal(inputsHash({ ...parts, inputs: [...parts.inputs].reverse() }), hash);
    assert.equal(inputsHash(JSON.parse(JSON.stringify(parts))), hash);
  });

  it('changes when the commit, an input value, the expression or the mode changes', () => {
    const hash = inputsHash(parts);
    assert.notEqual(inputsHash({ ...parts, commit: 'c'.repeat(40) }), hash);
    assert.notEqual(inputsHash({ ...parts, inputs: [parts.inputs[0], { ...parts.inputs[1], value: 'bye' }] }), hash);
    assert.notEqual(inputsHash({ ...parts, nixExpression: 'other.nix' }), hash);
    assert.notEqual(inputsHash({ ...parts, flakeMode: true }), hash);
    assert.notEqual(inputsHash({ ...parts, inputs: [{ ...parts.inputs[0], revision: null }, parts.inputs[1]] }), hash);
  });
});
