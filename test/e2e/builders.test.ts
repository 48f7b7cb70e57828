import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { startSshBuilder, type SshBuilder } from '../support/sshd';
import { makeGitRepo, type GitFixtureRepo } from '../support/git-fixture';
import { buildsOf, createJobset, eventually, nonce, trigger, waitForBuilds, waitForEvaluation } from '../support/pipeline';
import { registerSshBuilder, type RegisteredBuilder } from '../support/builder-registration';

/*
 * How Ringmaster copes with builders that fail, on real parts: real sshd builders on loopback (each with
 * its own chroot Nix store), the worker, Temporal and PostgreSQL. The dispatcher's state (queue, slots,
 * back-offs) lives per task queue, so every scenario gets a stack of its own: a builder backed off in one
 * scenario cannot steer another.
 */

/** A git repository whose release.nix holds `jobs` (Nix attribute bindings using `job name script attrs`). */
async function jobsetRepo(jobs: string): Promise<GitFixtureRepo> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringmaster-builders-fixture-'));
  try {
    await fsp.writeFile(
      path.join(dir, 'release.nix'),
      [
        '{ nonce ? "none", system ? builtins.currentSystem }:',
        'let',
        '  job = name: script: attrs: derivation ({',
        '    inherit name system nonce;',
        '    PATH = "/bin:/usr/bin";',
        '    builder = "/bin/sh";',
        '    args = [ "-c" script ];',
        '  } // attrs);',
        'in',
        '{',
        jobs,
        '}',
        '',
      ].join('\n'),
    );
    return await makeGitRepo(dir);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

async function builderRow(stack: TestStack, id: string): Promise<Record<string, any>> {
  const res = await stack.request('GET', `/api/v1/admin/builders/${id}`, { key: stack.adminKey });
  assert.equal(res.status, 200, res.text);
  return res.body;
}

async function buildLog(stack: TestStack, buildId: string): Promise<string> {
  const res = await stack.request('GET', `/api/v1/builds/${buildId}/log`);
  assert.equal(res.status, 200, res.text);
  return res.text;
}

/** Evaluates the jobset and answers the evaluation's id once it completed. */
async function evaluate(stack: TestStack, jobsetId: string): Promise<string> {
  const evaluation = await trigger(stack, jobsetId);
  const done = await waitForEvaluation(stack, evaluation.id);
  assert.equal(done.status, 'completed', done.error_message);
  return evaluation.id;
}

describe('a builder killed in the middle of a step', () => {
  let stack: TestStack;
  let builders: RegisteredBuilder[] = [];
  let repo: GitFixtureRepo;
  let jobsetId: string;
  let evaluationId: string;
  let killed: RegisteredBuilder;
  let survivor: RegisteredBuilder;
  const token = `killed-${nonce()}`;

  before(async () => {
    stack = await startTestStack({ worker: true });
    const fixtures = await Promise.all([startSshBuilder({ name: 'first' }), startSshBuilder({ name: 'second' })]);
    for (const f of fixtures) builders.push(await registerSshBuilder(stack, f));
    repo = await jobsetRepo(`  sleepy = job "sleepy" ''sleep 8; echo "$nonce slept" > $out'' { };`);
    jobsetId = (await createJobset(stack, repo.url, { inputs: { nonce: token } })).jobsetId;
  });
  after(async () => {
    await stack?.stop();
    await Promise.allSettled(builders.map((b) => b.fixture.stop()));
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
  });

  it('the step is found running on one of the two builders, which is then killed', async () => {
    evaluationId = await evaluate(stack, jobsetId);
    const sleepy = (await buildsOf(stack, evaluationId)).sleepy;
    const step = await eventually('the sleepy step to be building on a builder', async () => {
      const row = await stack.db('build_steps').where({ build_id: sleepy.id, drv_path: sleepy.drv_path }).first();
      if (row?.status !== 'running' || row?.phase !== 'building' || !row?.builder_id) throw new Error(`the step is ${row?.status}/${row?.phase}`);
      return row;
    });
    killed = builders.find((b) => b.id === step.builder_id)!;
    survivor = builders.find((b) => b.id !== step.builder_id)!;
    assert.ok(killed && survivor, 'the step runs on one of the registered builders');
    await killed.fixture.kill();
  });

  it('the killed builder is backed off: a failure counted, disabled for a while, the failure recorded', async () => {
    const row = await eventually('the failure to be recorded', async () => {
      const b = await builderRow(stack, killed.id);
      return b.consecutive_failures >= 1 ? b : undefined;
    }, 30_000);
    assert.ok(row.disabled_until, 'disabled_until is set');
    assert.ok(new Date(row.disabled_until).getTime() > Date.now(), `disabled_until ${row.disabled_until} is in the future`);
    assert.ok(typeof row.last_failure === 'string' && row.last_failure.length > 0, 'last_failure is set');
  });

  it('the step is retried on the other builder and the build succeeds', async () => {
    const builds = await waitForBuilds(stack, evaluationId, { timeoutMs: 90_000 });
    const sleepy = builds.sleepy;
    assert.equal(sleepy.status, 'succeeded', sleepy.error_message);
    assert.equal(sleepy.builder_id, survivor.id, 'the build ran on the surviving builder');
    assert.match(fs.readFileSync(sleepy.build_output_path, 'utf8'), new RegExp(`${token} slept`));
    assert.ok(fs.existsSync(path.join(survivor.fixture.storeRoot, sleepy.build_output_path)), "the output was built in the survivor's store");
    const log = await buildLog(stack, sleepy.id);
    assert.match(log, /builder failure: .*retried elsewhere/);
    assert.match(log, new RegExp(`on builder ${survivor.fixture.spec.name}\\b`));
  });

  it('the killed builder still shows its failure after the build', async () => {
    const row = await builderRow(stack, killed.id);
    assert.ok(row.consecutive_failures >= 1);
    assert.ok(row.last_failure);
    assert.equal((await builderRow(stack, survivor.id)).consecutive_failures, 0);
  });
});

describe('a builder whose host key does not match the pinned one', () => {
  let stack: TestStack;
  let impostor: RegisteredBuilder;
  let genuine: RegisteredBuilder;
  let repo: GitFixtureRepo;
  let jobsetId: string;
  const token = `hostkey-${nonce()}`;

  before(async () => {
    stack = await startTestStack({ worker: true });
    const [impostorSshd, genuineSshd] = await Promise.all([startSshBuilder({ name: 'impostor' }), startSshBuilder({ name: 'genuine' })]);
    // The impostor is pinned to the genuine builder's key, and made the faster one so it is tried first.
    impostor = await registerSshBuilder(stack, impostorSshd, { speedFactor: 10, publicHostKey: genuineSshd.spec.publicHostKey! });
    genuine = await registerSshBuilder(stack, genuineSshd, { speedFactor: 1 });
    repo = await jobsetRepo(`  quick = job "quick" ''echo "$nonce quick" > $out'' { };`);
    jobsetId = (await createJobset(stack, repo.url, { inputs: { nonce: token } })).jobsetId;
  });
  after(async () => {
    await stack?.stop();
    await Promise.allSettled([impostor?.fixture.stop(), genuine?.fixture.stop()]);
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
  });

  it('the build is refused by the mismatching builder and succeeds on the correct one', async () => {
    const evaluationId = await evaluate(stack, jobsetId);
    const quick = (await waitForBuilds(stack, evaluationId, { timeoutMs: 90_000 })).quick;
    assert.equal(quick.status, 'succeeded', quick.error_message);
    assert.equal(quick.builder_id, genuine.id);
    assert.match(fs.readFileSync(quick.build_output_path, 'utf8'), new RegExp(`${token} quick`));
    assert.ok(!fs.existsSync(path.join(impostor.fixture.storeRoot, quick.build_output_path)), 'nothing was built on the impostor');
    const log = await buildLog(stack, quick.id);
    assert.match(log, /builder failure: host key mismatch for builder impostor/);
  });

  it('the mismatch is reported on the builder', async () => {
    const row = await builderRow(stack, impostor.id);
    assert.ok(row.consecutive_failures >= 1, `consecutive_failures is ${row.consecutive_failures}`);
    assert.match(row.last_failure ?? '', /host key mismatch/);
    assert.ok(row.disabled_until, 'the impostor is backed off');
    assert.equal((await builderRow(stack, genuine.id)).consecutive_failures, 0);
  });
});

describe('no remote builders: the worker builds on its own Nix, and unsupported steps end at once', () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let evaluationId: string;
  let evaluatedAt: number;
  const token = `local-${nonce()}`;

  before(async () => {
    stack = await startTestStack({ worker: true });
    repo = await jobsetRepo(
      [
        `  local = job "local" ''echo "$nonce built here" > $out'' { };`,
        `  riscv = job "riscv" ''echo never > $out'' { system = "riscv64-none-elf"; };`,
        `  exotic = job "exotic" ''echo never > $out'' { requiredSystemFeatures = [ "no-such-feature" ]; };`,
      ].join('\n'),
    );
    const { jobsetId } = await createJobset(stack, repo.url, { inputs: { nonce: token } });
    evaluationId = await evaluate(stack, jobsetId);
    evaluatedAt = Date.now();
  });
  after(async () => {
    await stack?.stop();
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
  });

  it('steps no builder can run end as unsupported_system within seconds', async () => {
    const builds = await eventually('the unsupported builds to finish', async () => {
      const b = await buildsOf(stack, evaluationId);
      return b.riscv?.status === 'unsupported_system' && b.exotic?.status === 'unsupported_system' ? b : undefined;
    }, 20_000);
    assert.ok(Date.now() - evaluatedAt < 20_000, 'quickly, not after a timeout');
    assert.match(builds.riscv.error_message ?? '', /riscv64-none-elf/);
    assert.match(builds.exotic.error_message ?? '', /no-such-feature/);
  });

  it('a job builds on the worker\'s own Nix and its log says so', async () => {
    const builds = await waitForBuilds(stack, evaluationId, { timeoutMs: 60_000 });
    assert.deepEqual(
      Object.fromEntries(Object.entries(builds).map(([k, v]) => [k, v.status])),
      { local: 'succeeded', riscv: 'unsupported_system', exotic: 'unsupported_system' },
    );
    assert.equal(builds.local.builder_id, null, 'no remote builder');
    assert.match(fs.readFileSync(builds.local.build_output_path, 'utf8'), new RegExp(`${token} built here`));
    const log = await buildLog(stack, builds.local.id);
    assert.match(log, /on the worker's own Nix \(no remote builders configured\)/);
  });
});
