import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { nixEnv, runNix } from '../../activities/nix/nix-env';

describe('nixEnv and runNix', () => {
  it('nixEnv appends the no-substituters and sandbox-paths lines to an existing NIX_CONFIG', () => {
    const env = nixEnv({ NIX_CONFIG: 'cores = 1', EXTRA: 'yes' });
    assert.equal(env.NIX_CONFIG, 'cores = 1\nsubstituters =\nsandbox-paths = /bin /lib /lib64 /usr');
    assert.equal(env.EXTRA, 'yes');
    assert.equal(nixEnv({ NIX_CONFIG: '' }).NIX_CONFIG, 'substituters =\nsandbox-paths = /bin /lib /lib64 /usr');
  });

  it('Nix started by runNix sees no substituters', async () => {
    const shown = await runNix('nix', ['--extra-experimental-features', 'nix-command', 'show-config']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^substituters = *$/m);
    assert.match(shown.stdout, /^sandbox-paths = \/bin \/lib \/lib64 \/usr$/m);
  });

  it('runNix feeds its input on stdin and reports the exit code of a failure', async () => {
    const ok = await runNix('nix-instantiate', ['--eval', '--strict', '--json', '-'], { input: '{ sum = 1 + 2; }' });
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout), { sum: 3 });
    const bad = await runNix('nix-instantiate', ['--eval', '-E', 'throw "no"']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /no/);
  });

  it('runNix stops a command that outlives its timeout, and rejects when aborted', async () => {
    const started = Date.now();
    const timedOut = await runNix('sleep', ['30'], { timeoutMs: 200 });
    assert.notEqual(timedOut.code, 0);
    assert.match(timedOut.stderr, /timed out/);
    assert.ok(Date.now() - started < 10_000);

    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(runNix('sleep', ['30'], { signal: controller.signal }), /aborted/);
  });
});
