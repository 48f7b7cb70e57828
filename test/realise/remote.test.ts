import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { realiseLocally } from '../../activities/realise/local';
import { realiseOnBuilder } from '../../activities/realise/remote';
import { copyClosureFrom, copyClosureTo } from '../../activities/realise/closure';
import { BuilderConnectionPool } from '../../activities/realise/ssh-connection';
import { RemoteStoreServe } from '../../activities/realise/remote-store-serve';
import { localStore } from '../../activities/nix/store-serve';
import { instantiateFixtures, nonce, recordingRealiseOptions, waitUntil } from '../support/nix-fixtures';
import { pidsWithCommandLine, startSshBuilder, type SshBuilder } from '../support/sshd';

const options = recordingRealiseOptions;
const waitFor = (check: () => boolean, timeoutMs = 15_000) => waitUntil(check, timeoutMs);

/** Ends leftovers of a test's own fixture processes (found by nonce), by PID. */
function killLeftovers(needle: string): void {
  for (const pid of pidsWithCommandLine(needle)) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
}

const inBuilderStore = (builder: SshBuilder, storePath: string) => fs.existsSync(`${builder.storeRoot}${storePath}`);
const outputOf = (drvPath: string) => execFileSync('nix-store', ['--query', '--outputs', drvPath], { encoding: 'utf8' }).trim();

describe('realiseOnBuilder over a real sshd with a chroot store', () => {
  let builder: SshBuilder;
  const pool = new BuilderConnectionPool();

  before(async () => {
    builder = await startSshBuilder({ name: 'remote-test' });
  });
  after(async () => {
    await pool.closeAll();
    await builder?.stop();
  });

  it('builds b on the builder with a\'s output sent from here, and brings b\'s output back to /nix/store', async () => {
    const n = nonce();
    const drvs = await instantiateFixtures(
      `a = mk "a" "echo building-a-${n}; echo from-a > $out";
       b = mk "b" "echo building-b-${n}; read x < \${a}; echo \\"$x via b\\" > $out";`,
      n,
    );
    const aResult = await realiseLocally(drvs.a, options());
    assert.equal(aResult.status, 'succeeded');
    const aOut = aResult.outputs.out;
    const bOut = outputOf(drvs.b);
    assert.equal(inBuilderStore(builder, aOut), false, "a's output is not on the builder before");
    assert.equal(fs.existsSync(bOut), false, "b's output is not here before");

    const opts = options();
    const result = await realiseOnBuilder(pool, builder.spec, drvs.b, opts);
    assert.equal(result.status, 'succeeded', result.errorMessage ?? '');
    assert.deepEqual(result.outputs, { out: bOut });
    assert.deepEqual(opts.phases, ['connecting', 'sending_inputs', 'building', 'receiving_outputs']);
    assert.ok(inBuilderStore(builder, aOut), "a's output travelled to the builder");
    assert.ok(inBuilderStore(builder, bOut), 'b was built in the builder store');
    assert.match(opts.log(), new RegExp(`building-b-${n}`));
    assert.doesNotMatch(opts.log(), new RegExp(`building-a-${n}`), 'a was not rebuilt on the builder');
    assert.equal(fs.readFileSync(bOut, 'utf8'), 'from-a via b\n');
    execFileSync('nix-store', ['--check-validity', bOut]);
  });

  it('sends only the paths the builder lacks, and fetches only the paths missing here', async () => {
    const n = nonce();
    const drvs = await instantiateFixtures(
      `base = mk "base" "echo base > $out";
       left = mk "left" "read x < \${base}; echo left-$x > $out";
       right = mk "right" "read x < \${base}; echo right-$x > $out";`,
      n,
    );
    const base = await realiseLocally(drvs.base, options());
    const conn = await pool.get(builder.spec);

    const first = await copyClosureTo(conn, [drvs.left, base.outputs.out], builder.spec.remoteStore);
    assert.deepEqual(new Set(first.sent), new Set([drvs.base, drvs.left, base.outputs.out]));
    const again = await copyClosureTo(conn, [drvs.left, base.outputs.out], builder.spec.remoteStore);
    assert.deepEqual(again.sent, [], 'nothing travels the second time');
    const second = await copyClosureTo(conn, [drvs.right, base.outputs.out], builder.spec.remoteStore);
    assert.deepEqual(second.sent, [drvs.right], 'only the new .drv travels');

    const built = await realiseOnBuilder(pool, builder.spec, drvs.right, options());
    assert.equal(built.status, 'succeeded', built.errorMessage ?? '');
    const fetchedAgain = await copyClosureFrom(conn, [built.outputs.out], builder.spec.remoteStore);
    assert.deepEqual(fetchedAgain.received, [], 'outputs already here are not fetched again');
  });

  it("answers questions about the builder's store through one nix-store --serve on one channel, and fetches a chain built there in dependency order", async () => {
    const n = nonce();
    const drvs = await instantiateFixtures(
      `low = mk "low" "echo low-${n} > $out";
       mid = mk "mid" "echo \${low} > $out";
       high = mk "high" "echo \${mid} > $out";`,
      n,
    );
    const conn = await pool.get(builder.spec);
    await copyClosureTo(conn, [drvs.high], builder.spec.remoteStore);
    // Built there only: nothing of the chain is in this store (each output holds the path of the one below: a reference).
    const realised = await conn.execCollect(['nix-store', '--store', builder.spec.remoteStore!, '--realise', drvs.high]);
    assert.equal(realised.code, 0, realised.stderr);
    const [low, mid, high] = [drvs.low, drvs.mid, drvs.high].map(outputOf);
    assert.ok(![low, mid, high].some((o) => fs.existsSync(o)), 'the outputs are on the builder only');

    const served = new RemoteStoreServe(conn, builder.spec.remoteStore);
    try {
      const missing = `/nix/store/${'0'.repeat(32)}-never-built-${n}`;
      assert.deepEqual([...(await served.validPaths([high, missing, 'not a store path']))], [high]);
      assert.deepEqual(new Set(await served.closure([high])), new Set([low, mid, high]));
      assert.deepEqual((await served.pathInfos([mid])).get(mid)?.references, [low]);
      const onBuilder = `${builder.spec.remoteStore}\0--serve`;
      const channels = pidsWithCommandLine(onBuilder).length;
      assert.ok(channels >= 1, 'one nix-store --serve runs on the builder');
      const infos = await served.pathInfos([low, mid, high]);
      const fetched = await copyClosureFrom(conn, [high], builder.spec.remoteStore, served);
      assert.deepEqual(new Set(fetched.received), new Set([low, mid, high]));
      assert.equal(fs.readFileSync(high, 'utf8'), `${mid}\n`);
      assert.equal(fs.readFileSync(low, 'utf8'), `low-${n}\n`);
      assert.equal(pidsWithCommandLine(onBuilder).length, channels, 'the questions and the NARs went through the same process');
      // Dumped by that session and imported by the local `nix-store --serve --write`: each path valid here with
      // the NAR hash and references the builder recorded (no --export/--import process).
      assert.ok(pidsWithCommandLine('--serve\0--write').length >= 1, 'the local store imported through nix-store --serve --write');
      for (const p of [low, mid, high]) {
        const here = (await localStore.pathInfos([p])).get(p);
        assert.equal(here?.narHash, infos.get(p)!.narHash, `${p}: the NAR hash the builder recorded`);
        assert.deepEqual(here?.references, infos.get(p)!.references, `${p}: its references`);
      }
      const verified = spawnSync('nix-store', ['--verify-path', low, mid, high], { encoding: 'utf8' });
      assert.equal(verified.status, 0, verified.stderr);
    } finally {
      served.close();
    }
    await waitFor(() => !pidsWithCommandLine(`${builder.spec.remoteStore} --serve`).length);
  });

  it('reuses one pooled connection per builder, and reconnects after it is dropped', async () => {
    const first = await pool.get(builder.spec);
    const second = await pool.get(builder.spec);
    assert.equal(first, second);
    const results = await Promise.all([1, 2, 3, 4].map((i) => first.execCollect(['echo', `channel-${i}`])));
    assert.deepEqual(results.map((r) => r.stdout), ['channel-1\n', 'channel-2\n', 'channel-3\n', 'channel-4\n']);
    pool.drop(builder.spec.id);
    const third = await pool.get(builder.spec);
    assert.notEqual(third, first);
    assert.equal(first.closed, true);
    assert.equal((await third.execCollect(['true'])).code, 0);
  });

  it('a failing derivation on the builder ends as failed, not builder_failure', async () => {
    const { broken } = await instantiateFixtures(`broken = mk "broken" "echo remote-fail; exit 7";`);
    const opts = options();
    const result = await realiseOnBuilder(pool, builder.spec, broken, opts);
    assert.equal(result.status, 'failed');
    assert.equal(result.exitCode, 100);
    assert.match(result.errorMessage ?? '', /failed with exit code 7/);
    assert.match(opts.log(), /remote-fail/);
  });

  it('a build running past its timeout on the builder ends as timeout', async () => {
    const { slow } = await instantiateFixtures(`slow = mk "slow" "while :; do echo tick; /bin/sleep 0.2; done";`);
    const result = await realiseOnBuilder(pool, builder.spec, slow, options({ timeoutSeconds: 2 }));
    assert.equal(result.status, 'timeout', result.errorMessage ?? '');
    assert.equal(result.exitCode, 101);
  });

  it('a remote build whose log passes the limit is killed there as log_limit_exceeded', async () => {
    const n = nonce();
    const { chatty } = await instantiateFixtures(`chatty = mk "chatty" "while :; do echo remote-chatter-${n}-0123456789; done";`, n);
    try {
      const opts = options({ logLimitBytes: 8192 });
      const result = await realiseOnBuilder(pool, builder.spec, chatty, opts);
      assert.equal(result.status, 'log_limit_exceeded', result.errorMessage ?? '');
      assert.equal(result.logBytes, 8192);
      assert.equal(Buffer.byteLength(opts.log()), 8192);
      await waitFor(() => pidsWithCommandLine(`remote-chatter-${n}`).length === 0);
    } finally {
      killLeftovers(`remote-chatter-${n}`);
    }
  });

  it('cancelling a remote build kills the remote process group', async () => {
    const n = nonce();
    const { forever } = await instantiateFixtures(`forever = mk "forever" "echo remote-started-${n}; while :; do /bin/sleep 1; done";`, n);
    const controller = new AbortController();
    const opts = options({ signal: controller.signal });
    try {
      const running = realiseOnBuilder(pool, builder.spec, forever, opts);
      await waitFor(() => opts.log().includes(`remote-started-${n}`));
      assert.ok(pidsWithCommandLine(`remote-started-${n}`).length > 0, 'the remote builder runs before the cancel');
      assert.ok(pidsWithCommandLine(forever).length > 0, 'the remote nix-store runs before the cancel');
      controller.abort();
      const result = await running;
      assert.equal(result.status, 'cancelled');
      await waitFor(() => pidsWithCommandLine(`remote-started-${n}`).length === 0 && pidsWithCommandLine(forever).length === 0);
      assert.equal((await (await pool.get(builder.spec)).execCollect(['true'])).code, 0, 'the connection survives the cancel');
    } finally {
      killLeftovers(`remote-started-${n}`);
    }
  });

  it("a remote build whose worker's SSH session ends (the worker died: no kill was sent) is stopped on the builder, not left running", async () => {
    const n = nonce();
    const { forever } = await instantiateFixtures(`forever = mk "forever" "echo orphaned-${n}; while :; do /bin/sleep 1; done";`, n);
    const workerPool = new BuilderConnectionPool();
    const opts = options();
    try {
      const running = realiseOnBuilder(workerPool, builder.spec, forever, opts);
      await waitFor(() => opts.log().includes(`orphaned-${n}`));
      assert.ok(pidsWithCommandLine(forever).length > 0, 'the remote nix-store runs before the session ends');
      await workerPool.closeAll();
      assert.equal((await running).status, 'builder_failure');
      await waitFor(() => pidsWithCommandLine(`orphaned-${n}`).length === 0 && pidsWithCommandLine(forever).length === 0);
    } finally {
      killLeftovers(`orphaned-${n}`);
    }
  });

  it('a pinned host key that does not match is refused as builder_failure', async () => {
    const { x } = await instantiateFixtures(`x = mk "x" "echo x > $out";`);
    const otherKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHnk7Kkm1pHf3RzJKqJ9q4QfXrJ8wQzZpY0Z1x2y3z4A';
    const result = await realiseOnBuilder(pool, { ...builder.spec, id: `${builder.spec.id}-wrong-key`, publicHostKey: otherKey }, x, options());
    assert.equal(result.status, 'builder_failure');
    assert.match(result.errorMessage ?? '', /host key mismatch/);
  });

  it('a pinned host key in the machines-file base64 form is accepted', async () => {
    const pinned = Buffer.from(builder.spec.publicHostKey!).toString('base64');
    const conn = await pool.get({ ...builder.spec, id: `${builder.spec.id}-b64`, publicHostKey: pinned });
    assert.equal((await conn.execCollect(['echo', 'ok'])).stdout, 'ok\n');
    pool.drop(`${builder.spec.id}-b64`);
  });
});

describe('a builder that dies', () => {
  it('killing sshd mid-build ends the build as builder_failure', async () => {
    const builder = await startSshBuilder({ name: 'doomed' });
    const pool = new BuilderConnectionPool();
    const n = nonce();
    try {
      const { forever } = await instantiateFixtures(`forever = mk "forever" "echo doomed-started-${n}; while :; do /bin/sleep 1; done";`, n);
      const opts = options();
      const running = realiseOnBuilder(pool, builder.spec, forever, opts);
      await waitFor(() => opts.log().includes(`doomed-started-${n}`));
      await builder.kill();
      const result = await running;
      assert.equal(result.status, 'builder_failure');
      assert.match(result.errorMessage ?? '', /connection to the builder was lost/);
    } finally {
      killLeftovers(`doomed-started-${n}`);
      await pool.closeAll();
      await builder.stop();
    }
  });

  it('a builder that refuses connections is builder_failure', async () => {
    const builder = await startSshBuilder({ name: 'gone' });
    const spec = { ...builder.spec, sshKeyFile: null, sshPrivateKey: fs.readFileSync(builder.spec.sshKeyFile!, 'utf8') };
    await builder.stop();
    const pool = new BuilderConnectionPool();
    const { y } = await instantiateFixtures(`y = mk "y" "echo y > $out";`);
    const opts = options();
    const result = await realiseOnBuilder(pool, spec, y, opts);
    assert.equal(result.status, 'builder_failure');
    assert.match(result.errorMessage ?? '', /cannot connect to builder gone/);
    assert.deepEqual(opts.phases, ['connecting']);
    await pool.closeAll();
  });
});

describe("a builder whose Nix database is busy for a moment (Nix's \"SQLite database '…' is busy\")", () => {
  // The builder's nix-store is wrapped: while busy-left holds a number above 0, a --check-validity fails as
  // Nix does when another Nix process there holds the database as it opens it, and counts down; every call
  // is written to `calls`; while `broken` exists, it fails with another error. Everything else is the real nix-store.
  let builder: SshBuilder;
  let dir: string;
  const pool = new BuilderConnectionPool();
  const checks = () => fs.readFileSync(`${dir}/calls`, 'utf8').split('\n').filter((l) => l.includes('--check-validity')).length;

  before(async () => {
    dir = fs.mkdtempSync('/tmp/ringmaster-busy-nix-');
    fs.writeFileSync(
      `${dir}/nix-store`,
      [
        '#!/bin/sh',
        `echo "$*" >> ${dir}/calls`,
        'case "$*" in *--check-validity*)',
        `  left=$(cat ${dir}/busy-left 2>/dev/null || echo 0)`,
        `  if [ -e ${dir}/broken ]; then echo "error: getting status of '/builder/nix/var/nix/db': Permission denied" >&2; exit 1; fi`,
        `  if [ "$left" -gt 0 ]; then echo $((left - 1)) > ${dir}/busy-left; echo "error: SQLite database '/builder/nix/var/nix/db/db.sqlite' is busy" >&2; exit 1; fi;;`,
        'esac',
        'exec /usr/bin/nix-store "$@"',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    builder = await startSshBuilder({ name: 'busy-db', pathPrefix: dir });
  });
  after(async () => {
    await pool.closeAll();
    await builder?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('asks again, and sends the closure once the database answers', async () => {
    const { p } = await instantiateFixtures(`p = mk "p" "echo p > $out";`);
    const conn = await pool.get(builder.spec);
    fs.writeFileSync(`${dir}/calls`, '');
    fs.writeFileSync(`${dir}/busy-left`, '2');
    const { sent } = await copyClosureTo(conn, [p], builder.spec.remoteStore);
    assert.deepEqual(sent, [p]);
    assert.equal(checks(), 3, 'two busy answers, then the question that was answered');
    assert.ok(inBuilderStore(builder, p));
  });

  it('a database busy for longer is a builder error, after a bounded number of questions; another error is not asked again', async () => {
    const { q } = await instantiateFixtures(`q = mk "q" "echo q > $out";`);
    const conn = await pool.get(builder.spec);
    fs.writeFileSync(`${dir}/calls`, '');
    fs.writeFileSync(`${dir}/busy-left`, '100');
    await assert.rejects(copyClosureTo(conn, [q], builder.spec.remoteStore), /is busy/);
    assert.equal(checks(), 5, 'the first question and four more');

    fs.writeFileSync(`${dir}/calls`, '');
    fs.writeFileSync(`${dir}/busy-left`, '0');
    fs.writeFileSync(`${dir}/broken`, '');
    await assert.rejects(copyClosureTo(conn, [q], builder.spec.remoteStore), /Permission denied/);
    assert.equal(checks(), 1, 'no question asked again');
  });
});
