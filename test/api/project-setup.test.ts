import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ScheduleNotFoundError } from '@temporalio/client';
import { startTestStack, type TestStack } from '../support/stack';
import { jobsetScheduleId } from '../../api/jobset-schedules';

const TINY_DRV = (name: string) => `derivation { name = "${name}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo ok > $out" ]; }`;

const FLAKE_WITH_HYDRA_JOBS = `{
  description = "a tiny flake";
  outputs = { self }: {
    hydraJobs.hello.x86_64-linux = ${TINY_DRV('hello')};
  };
}
`;
const FLAKE_WITH_CHECKS_AND_UNFETCHABLE_INPUT = `{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  outputs = { self, nixpkgs }: {
    # hydraJobs would go here
    checks.x86_64-linux.unit = nixpkgs.legacyPackages.x86_64-linux.hello;
  };
}
`;

/** A git repository made on the spot: git init, the files, one commit. */
function gitRepo(root: string, name: string, files: Record<string, string>, branch = 'main'): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.org', ...args], { cwd: dir, stdio: 'pipe' });
  git('init', '-q', '-b', branch);
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  }
  git('add', '-A');
  git('commit', '-q', '-m', 'init');
  return dir;
}

const probeTempDirs = () => fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('ringmaster-probe-')).length;

describe('project setup', () => {
  let stack: TestStack;
  let readOnly: string;
  let creator: string;
  before(async () => {
    stack = await startTestStack({ worker: false });
    readOnly = await stack.keyFor('read-only');
    creator = await stack.keyFor('create-projects');
  });
  after(async () => stack?.stop());

  /** key null sends no Authorization header. */
  const setup = (body: unknown, key: string | null = stack.adminKey) => stack.request('POST', '/api/v1/projects/setup', { key: key ?? undefined, body });
  const projectNamed = (name: string) => stack.db('projects').where({ name }).first();

  it('creates the project and its jobsets in one call, answering {project, jobsets}', async () => {
    const res = await setup({
      name: 'setup-one',
      repository_url: 'https://example.org/one.git',
      description: 'made by setup',
      jobsets: [
        { name: 'flake', nix_expression: 'hydraJobs', flake_mode: true, description: 'flake jobs', systems: ['x86_64-linux'], check_interval: 3600, branch: 'main' },
        { name: 'legacy', nix_expression: 'ci/release.nix' },
      ],
    }, creator);
    assert.equal(res.status, 200);
    assert.equal(res.body.project.name, 'setup-one');
    assert.equal(res.body.project.description, 'made by setup');
    assert.equal(res.body.project.repository_url, 'https://example.org/one.git');
    assert.equal(res.body.jobsets.length, 2);
    const [flake, legacy] = res.body.jobsets;
    assert.equal(flake.project_id, res.body.project.id);
    assert.equal(flake.flake_mode, true);
    assert.deepEqual(flake.systems, ['x86_64-linux']);
    assert.equal(flake.check_interval, 3600);
    assert.equal(legacy.nix_expression, 'ci/release.nix');
    const listed = await stack.request('GET', `/api/v1/projects/${res.body.project.id}/jobsets`);
    assert.equal(listed.body.total, 2);
    const schedule = await stack.temporal.client.schedule.getHandle(jobsetScheduleId(flake.id)).describe();
    assert.deepEqual(schedule.spec.intervals?.map((i) => i.every), [3_600_000]);
    await assert.rejects(stack.temporal.client.schedule.getHandle(jobsetScheduleId(legacy.id)).describe(), ScheduleNotFoundError);
  });

  it('an empty jobset list creates just the project', async () => {
    const res = await setup({ name: 'setup-empty', repository_url: 'file:///srv/empty', jobsets: [] });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.jobsets, []);
  });

  it('an invalid jobset is a 400 naming it, and nothing is created', async () => {
    const res = await setup({
      name: 'setup-invalid',
      repository_url: 'file:///srv/x',
      jobsets: [
        { name: 'fine', nix_expression: 'release.nix', check_interval: 60 },
        { name: 'escapes', nix_expression: '../../etc/release.nix' },
      ],
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error_code, 'VALIDATION_ERROR');
    assert.equal(res.body.details[0].field, 'body.jobsets.1.nix_expression');
    const schemaError = await setup({ name: 'setup-invalid', repository_url: 'file:///srv/x', jobsets: [{ name: 'a', nix_expression: 'x.nix', keep_nr: -1 }] });
    assert.equal(schemaError.status, 400);
    assert.equal(schemaError.body.details[0].field, 'body.jobsets.0.keep_nr');
    const missing = await setup({ name: 'setup-invalid', repository_url: 'file:///srv/x' });
    assert.equal(missing.body.details[0].field, 'body.jobsets');
    assert.equal(await projectNamed('setup-invalid'), undefined);
  });

  it('duplicated jobset names are a 409, and nothing is created', async () => {
    const res = await setup({
      name: 'setup-dup',
      repository_url: 'file:///srv/x',
      jobsets: [
        { name: 'same', nix_expression: 'release.nix', check_interval: 60 },
        { name: 'same', nix_expression: 'default.nix' },
      ],
    });
    assert.equal(res.status, 409);
    assert.equal(res.body.error_code, 'CONFLICT');
    assert.equal(res.body.details[0].field, 'body.jobsets.1.name');
    assert.equal(await projectNamed('setup-dup'), undefined);
  });

  it('an existing project name is a 409, and no jobset is created', async () => {
    const before = await stack.db('jobsets').count<{ count: string }[]>('* as count');
    const res = await setup({ name: 'setup-one', repository_url: 'file:///srv/x', jobsets: [{ name: 'again', nix_expression: 'release.nix', check_interval: 60 }] });
    assert.equal(res.status, 409);
    const afterCount = await stack.db('jobsets').count<{ count: string }[]>('* as count');
    assert.equal(afterCount[0].count, before[0].count);
    assert.equal(await stack.db('jobsets').where({ name: 'again' }).first(), undefined);
  });

  it('setup needs create-projects: 401 without a key, 403 read-only', async () => {
    const body = { name: 'setup-denied', repository_url: 'file:///srv/x', jobsets: [] };
    assert.equal((await setup(body, null)).status, 401);
    const ro = await setup(body, readOnly);
    assert.equal(ro.status, 403);
    assert.equal(ro.body.error_code, 'FORBIDDEN');
    assert.equal(await projectNamed('setup-denied'), undefined);
  });

  describe('probe', () => {
    let root: string;
    before(() => {
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-probe-fixtures-'));
    });
    after(() => fs.rmSync(root, { recursive: true, force: true }));

    const probe = (body: unknown, key: string | null = creator) => stack.request('POST', '/api/v1/projects/probe', { key: key ?? undefined, body });

    it('a git repository with a flake exposing hydraJobs is evaluated by nix and suggests a flake jobset', async () => {
      const repo = gitRepo(root, 'flake-repo', { 'flake.nix': FLAKE_WITH_HYDRA_JOBS, 'README.md': 'hi\n', 'src/main.c': '' });
      const before = probeTempDirs();
      const res = await probe({ repository_url: pathToFileURL(repo).href });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.is_flake, true);
      assert.equal(res.body.has_hydra_jobs, true);
      assert.equal(res.body.has_checks, false);
      assert.equal(res.body.flake_evaluated, true);
      assert.deepEqual(res.body.flake_outputs, ['hydraJobs']);
      assert.deepEqual(res.body.files, ['README.md', 'flake.nix', 'src/']);
      assert.equal(res.body.branch, 'main');
      assert.match(res.body.revision, /^[0-9a-f]{40}$/);
      assert.deepEqual(res.body.suggested_jobsets, [
        { name: 'hydra-jobs', nix_expression: 'hydraJobs', flake_mode: true, description: "The flake's hydraJobs" },
      ]);
      assert.equal(probeTempDirs(), before, 'the clone is removed');
    });

    it('the suggestions can be fed to setup as they are', async () => {
      const repo = path.join(root, 'flake-repo');
      const hints = (await probe({ repository_url: repo })).body;
      assert.equal(hints.has_hydra_jobs, true);
      const res = await setup({ name: 'from-probe', repository_url: repo, jobsets: hints.suggested_jobsets }, creator);
      assert.equal(res.status, 200);
      assert.equal(res.body.jobsets[0].nix_expression, 'hydraJobs');
    });

    it('a git repository with release.nix suggests a legacy jobset', async () => {
      const repo = gitRepo(root, 'legacy-repo', { 'release.nix': `{ }: { hello = ${TINY_DRV('hello')}; }\n`, 'default.nix': '{ }: { }\n' });
      const res = await probe({ repository_url: repo });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.is_flake, false);
      assert.equal(res.body.has_hydra_jobs, false);
      assert.equal(res.body.flake_evaluated, false);
      assert.deepEqual(res.body.files, ['default.nix', 'release.nix']);
      assert.deepEqual(res.body.suggested_jobsets, [
        { name: 'release', nix_expression: 'release.nix', flake_mode: false, description: 'The jobs of release.nix' },
      ]);
    });

    it('a branch can be probed', async () => {
      const repo = gitRepo(root, 'branchy', { 'default.nix': '{ }: { }\n' });
      const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=T', '-c', 'user.email=t@e', ...args], { cwd: repo, stdio: 'pipe' });
      git('checkout', '-q', '-b', 'next');
      fs.writeFileSync(path.join(repo, 'flake.nix'), FLAKE_WITH_HYDRA_JOBS);
      git('add', '-A');
      git('commit', '-q', '-m', 'flake');
      git('checkout', '-q', 'main');
      const main = await probe({ repository_url: repo });
      assert.equal(main.body.is_flake, false);
      const next = await probe({ repository_url: repo, branch: 'next' });
      assert.equal(next.status, 200);
      assert.equal(next.body.branch, 'next');
      assert.equal(next.body.has_hydra_jobs, true);
      const missing = await probe({ repository_url: repo, branch: 'no-such-branch' });
      assert.equal(missing.status, 400);
      assert.equal(missing.body.details[0].field, 'body.repository_url');
      const bad = await probe({ repository_url: repo, branch: '--upload-pack=x' });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.details[0].field, 'body.branch');
    });

    it('a plain directory is read in place, and a flake nix cannot evaluate offline falls back to reading flake.nix', async () => {
      const dir = path.join(root, 'plain');
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'flake.nix'), FLAKE_WITH_CHECKS_AND_UNFETCHABLE_INPUT);
      const res = await probe({ repository_url: dir });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.is_flake, true);
      assert.equal(res.body.flake_evaluated, false);
      assert.equal(res.body.has_checks, true);
      assert.equal(res.body.has_hydra_jobs, false, 'a comment does not count');
      assert.equal(res.body.branch, null);
      assert.deepEqual(res.body.suggested_jobsets.map((s: { name: string }) => s.name), ['checks']);
      assert.deepEqual(fs.readdirSync(dir), ['flake.nix'], 'nothing is written into the directory');
    });

    it('a missing, unreachable or malformed repository is a 400 naming body.repository_url', async () => {
      for (const repositoryUrl of [
        path.join(root, 'does-not-exist'),
        pathToFileURL(path.join(root, 'does-not-exist')).href,
        'http://127.0.0.1:1/nothing.git',
        'relative/path',
        'ext::sh -c touch% /tmp/pwned',
        '-uhelp',
      ]) {
        const res = await probe({ repository_url: repositoryUrl });
        assert.equal(res.status, 400, repositoryUrl);
        assert.equal(res.body.error_code, 'VALIDATION_ERROR');
        assert.equal(res.body.details[0].field, 'body.repository_url', repositoryUrl);
      }
      const missing = await probe({});
      assert.equal(missing.body.details[0].field, 'body.repository_url');
    });

    it('probe needs create-projects: 401 without a key, 403 read-only', async () => {
      const repo = path.join(root, 'legacy-repo');
      assert.equal((await probe({ repository_url: repo }, null)).status, 401);
      assert.equal((await probe({ repository_url: repo }, readOnly)).status, 403);
      assert.equal((await probe({ repository_url: repo }, stack.adminKey)).status, 200);
    });
  });
});
