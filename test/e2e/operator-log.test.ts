import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { startSshBuilder, type SshBuilder } from '../support/sshd';
import { makeGitRepo, type GitFixtureRepo } from '../support/git-fixture';
import { createJobset, eventually, nonce, trigger, waitForBuilds, waitForEvaluation } from '../support/pipeline';
import { createLogger } from '../../lib/logger';
import { localSystem } from '../../activities/nix-system';

/*
 * What an operator reads while the stack works: the worker's logger writes JSON lines into a stream
 * this test keeps, while a real evaluation builds on real sshd builders, one of which fails.
 */

type LogLine = Record<string, any>;

describe('the operator lines of a running stack', () => {
  let stack: TestStack;
  let genuine: SshBuilder;
  let impostor: SshBuilder;
  let repo: GitFixtureRepo;
  let privateKey: string;
  let evaluationId: string;
  let projectName: string;
  const chunks: string[] = [];
  const lines = (): LogLine[] => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const token = `oplog-${nonce()}`;

  before(async () => {
    const destination = new Writable({ write(chunk, _enc, done) { chunks.push(String(chunk)); done(); } });
    stack = await startTestStack({ worker: true, logger: createLogger({ destination, level: 'info' }) });
    [genuine, impostor] = await Promise.all([startSshBuilder({ name: 'genuine' }), startSshBuilder({ name: 'impostor' })]);
    // The genuine builder is given its private key itself (a secret stored in the database), not a key file.
    privateKey = fs.readFileSync(genuine.spec.sshKeyFile!, 'utf8');
    const system = await localSystem();
    const register = async (b: SshBuilder, extra: Record<string, unknown>) => {
      const res = await stack.request('POST', '/api/v1/admin/builders', {
        key: stack.adminKey,
        body: { name: b.spec.name, ssh_uri: b.spec.sshUri, remote_store: b.spec.remoteStore, systems: [system], max_jobs: 2, ...extra },
      });
      assert.equal(res.status, 200, res.text);
    };
    await register(genuine, { ssh_private_key: privateKey, public_host_key: genuine.spec.publicHostKey, speed_factor: 1 });
    // Pinned to the genuine builder's host key, and faster so that it is tried first: it fails and backs off.
    await register(impostor, { ssh_key_file: impostor.spec.sshKeyFile, public_host_key: genuine.spec.publicHostKey, speed_factor: 10 });

    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringmaster-oplog-fixture-'));
    await fsp.writeFile(path.join(dir, 'release.nix'), [
      '{ nonce ? "none", system ? builtins.currentSystem }:',
      'let job = name: script: derivation { inherit name system nonce; PATH = "/bin:/usr/bin"; builder = "/bin/sh"; args = [ "-c" script ]; };',
      'in {',
      '  fine = job "fine" \'\'echo "$nonce fine" > $out\'\';',
      '  broken = job "broken" \'\'echo "$nonce breaks"; exit 3\'\';',
      '}',
      '',
    ].join('\n'));
    repo = await makeGitRepo(dir);
    await fsp.rm(dir, { recursive: true, force: true });
    projectName = `oplog-${nonce()}`;
    const { jobsetId } = await createJobset(stack, repo.url, { name: projectName, inputs: { nonce: token } });
    evaluationId = (await trigger(stack, jobsetId)).id;
    const done = await waitForEvaluation(stack, evaluationId);
    assert.equal(done.status, 'completed', done.error_message);
    await waitForBuilds(stack, evaluationId, { timeoutMs: 180_000 });
  });

  after(async () => {
    await stack?.stop();
    await Promise.allSettled([genuine?.stop(), impostor?.stop()]);
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
  });

  const find = (event: string, match: (l: LogLine) => boolean = () => true) =>
    eventually(`a ${event} line`, async () => lines().find((l) => l.event === event && match(l)), 30_000);

  it('an evaluation started line names the jobset and the evaluation', async () => {
    const line = await find('evaluation_started', (l) => l.evaluation_id === evaluationId);
    assert.equal(line.level, 'info');
    assert.equal(line.component, 'evaluation');
    assert.equal(line.jobset, `${projectName}/main`);
    assert.match(line.commit, /^[0-9a-f]{40}$/);
  });

  it('an evaluation finished line gives its status, jobs, errors and duration', async () => {
    const line = await find('evaluation_finished', (l) => l.evaluation_id === evaluationId);
    assert.equal(line.status, 'completed');
    assert.equal(line.jobs, 2);
    assert.equal(line.errors, 0);
    assert.equal(typeof line.duration_s, 'number');
    assert.match(line.msg, new RegExp(`evaluation ${evaluationId} of ${projectName}/main completed: 2 jobs, 0 errors in [\\d.]+ s`));
  });

  it('a build finished line per build gives the job, status, duration and builder', async () => {
    const fine = await find('build_finished', (l) => l.evaluation_id === evaluationId && l.job === 'fine');
    assert.equal(fine.status, 'succeeded');
    assert.equal(fine.level, 'info');
    assert.equal(fine.builder, 'genuine');
    assert.equal(typeof fine.duration_s, 'number');
    const broken = await find('build_finished', (l) => l.evaluation_id === evaluationId && l.job === 'broken');
    assert.equal(broken.status, 'failed');
    assert.equal(broken.level, 'warn');
    assert.equal(broken.jobset, `${projectName}/main`);
  });

  it('a builder failure and its back-off are told, with the reason', async () => {
    const failure = await find('builder_failure', (l) => l.builder === 'impostor');
    assert.equal(failure.level, 'warn');
    assert.match(failure.reason, /host key mismatch/);
    assert.match(failure.drv_path, /^\/nix\/store\/.*\.drv$/);
    const backoff = await find('builder_backoff', (l) => l.builder === 'impostor');
    assert.ok(backoff.consecutive_failures >= 1);
    assert.ok(new Date(backoff.disabled_until).getTime() > Date.now() - 60_000);
  });

  it('no secret reaches the log: neither the builder private key nor an API key', () => {
    const text = chunks.join('');
    assert.ok(text.length > 0);
    assert.ok(!text.includes('PRIVATE KEY'), 'no private key header');
    for (const line of privateKey.split('\n').filter((l) => l.length > 20)) assert.ok(!text.includes(line), 'no line of the private key');
    assert.ok(!text.includes(stack.adminKey), 'no API key');
  });
});
