import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { realiseLocally } from '../../activities/realise/local';
import { instantiateFixtures, nonce, recordingRealiseOptions, waitUntil } from '../support/nix-fixtures';
import { pidsWithCommandLine } from '../support/sshd';

const options = recordingRealiseOptions;
const waitFor = (check: () => boolean, timeoutMs = 10_000) => waitUntil(check, timeoutMs);

describe('realiseLocally', () => {
  it('a successful build streams its log and returns its outputs by name', async () => {
    const { multi } = await instantiateFixtures(`multi = mkMulti "multi" [ "out" "doc" ] "echo building-multi-\${nonce}; echo main > $out; echo manual > $doc";`);
    const opts = options();
    const result = await realiseLocally(multi, opts);
    assert.equal(result.status, 'succeeded');
    assert.equal(result.exitCode, 0);
    assert.equal(result.errorMessage, null);
    assert.deepEqual(Object.keys(result.outputs).sort(), ['doc', 'out']);
    assert.equal(fs.readFileSync(result.outputs.out, 'utf8'), 'main\n');
    assert.equal(fs.readFileSync(result.outputs.doc, 'utf8'), 'manual\n');
    assert.match(opts.log(), /building-multi-[0-9a-f]+/);
    assert.equal(result.logBytes, Buffer.byteLength(opts.log()));
    assert.deepEqual(opts.phases, ['building']);
  });

  it('a builder that exits non-zero ends as failed with Nix\'s message', async () => {
    const { broken } = await instantiateFixtures(`broken = mk "broken" "echo about to fail; exit 3";`);
    const opts = options();
    const result = await realiseLocally(broken, opts);
    assert.equal(result.status, 'failed');
    assert.equal(result.exitCode, 100);
    assert.match(result.errorMessage ?? '', /failed with exit code 3/);
    assert.deepEqual(result.outputs, {});
    assert.match(opts.log(), /about to fail/);
  });

  it('a build whose dependency fails ends as failed', async () => {
    const { top } = await instantiateFixtures(`dep = mk "dep" "exit 1";\n top = mk "top" "read x < \${dep}; echo $x > $out";`);
    const result = await realiseLocally(top, options());
    assert.equal(result.status, 'failed');
    assert.match(result.errorMessage ?? '', /dependencies of derivation .* failed to build/);
  });

  it('a build running past --timeout ends as timeout (exit 101)', async () => {
    const { slow } = await instantiateFixtures(`slow = mk "slow" "while :; do echo tick; /bin/sleep 0.2; done";`);
    const started = Date.now();
    const result = await realiseLocally(slow, options({ timeoutSeconds: 2 }));
    assert.equal(result.status, 'timeout');
    assert.equal(result.exitCode, 101);
    assert.match(result.errorMessage ?? '', /timed out after 2 seconds/);
    assert.ok(Date.now() - started < 15_000);
  });

  it('a build silent for longer than max-silent-time ends as timeout', async () => {
    const { silent } = await instantiateFixtures(`silent = mk "silent" "echo quiet now; /bin/sleep 60";`);
    const result = await realiseLocally(silent, options({ maxSilentSeconds: 1 }));
    assert.equal(result.status, 'timeout');
    assert.equal(result.exitCode, 101);
    assert.match(result.errorMessage ?? '', /timed out after 1 seconds of silence/);
  });

  it('a build whose log passes the limit is killed as log_limit_exceeded, and onLog never gets more than the limit', async () => {
    const n = nonce();
    const { chatty } = await instantiateFixtures(`chatty = mk "chatty" "while :; do echo chatter-${n}-0123456789abcdef; done";`, n);
    const opts = options({ logLimitBytes: 4096 });
    const result = await realiseLocally(chatty, opts);
    assert.equal(result.status, 'log_limit_exceeded');
    assert.equal(result.logBytes, 4096);
    assert.equal(Buffer.byteLength(opts.log()), 4096);
    await waitFor(() => pidsWithCommandLine(`chatter-${n}`).length === 0);
  });

  it('aborting the signal kills the build\'s processes and ends as cancelled', async () => {
    const n = nonce();
    const { forever } = await instantiateFixtures(`forever = mk "forever" "echo started-${n}; while :; do /bin/sleep 1; done";`, n);
    const controller = new AbortController();
    const opts = options({ signal: controller.signal });
    const running = realiseLocally(forever, opts);
    await waitFor(() => opts.log().includes(`started-${n}`));
    assert.ok(pidsWithCommandLine(`started-${n}`).length > 0, 'the builder runs before the cancel');
    controller.abort();
    const result = await running;
    assert.equal(result.status, 'cancelled');
    await waitFor(() => pidsWithCommandLine(`started-${n}`).length === 0);
  });

  it('an already aborted signal starts nothing', async () => {
    const { never } = await instantiateFixtures(`never = mk "never" "echo hi > $out";`);
    const controller = new AbortController();
    controller.abort();
    const result = await realiseLocally(never, options({ signal: controller.signal }));
    assert.equal(result.status, 'cancelled');
    assert.equal(result.logBytes, 0);
  });
});
