import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runProcess } from '../../lib/process-runner';
import { GIT_SETTINGS, gitEnvironment } from '../../lib/git-environment';
import { alive } from '../support/sshd';

describe('the process runner', () => {
  it('runs an argument array without a shell and reports exit code and output', async () => {
    const r = await runProcess('printf', ['%s|', 'a b', '$(echo no)', ';']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'a b|$(echo no)|;|');
    assert.equal(r.timedOut, false);
  });

  it('a non-zero exit is a result, with stderr', async () => {
    const r = await runProcess('sh', ['-c', 'echo broken >&2; exit 7']);
    assert.equal(r.code, 7);
    assert.equal(r.stderr, 'broken\n');
  });

  it('a program that does not exist rejects with ENOENT', async () => {
    await assert.rejects(runProcess('ringmaster-no-such-program', []), (err: NodeJS.ErrnoException) => err.code === 'ENOENT');
  });

  it('a timeout stops the whole process group, grandchildren included', async () => {
    const started = Date.now();
    const r = await runProcess('sh', ['-c', 'sleep 30 & echo $!; wait'], { timeoutMs: 500, killGraceMs: 500 });
    assert.equal(r.timedOut, true);
    assert.ok(Date.now() - started < 10_000);
    const grandchild = Number(r.stdout.trim());
    assert.ok(grandchild > 0);
    for (let i = 0; i < 50 && alive(grandchild); i++) await new Promise((res) => setTimeout(res, 100));
    assert.equal(alive(grandchild), false, 'the background sleep was stopped too');
  });

  it('an abort stops it the same way', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const r = await runProcess('sleep', ['30'], { signal: controller.signal, killGraceMs: 200 });
    assert.equal(r.aborted, true);
    assert.notEqual(r.code, 0);
  });

  it('output beyond the cap is dropped and said to be', async () => {
    const r = await runProcess('head', ['-c', '100000', '/dev/zero'], { maxStdoutBytes: 1000 });
    assert.equal(r.stdout.length, 1000);
    assert.equal(r.truncated, true);
  });

  it('input is written to stdin', async () => {
    const r = await runProcess('cat', [], { input: 'hello' });
    assert.equal(r.stdout, 'hello');
  });
});

describe('the git settings', () => {
  it('never prompt, ignore the system config and run ssh in batch mode', () => {
    const env = gitEnvironment({ EXTRA: '1' });
    assert.equal(env.GIT_TERMINAL_PROMPT, '0');
    assert.equal(env.GIT_CONFIG_NOSYSTEM, '1');
    assert.match(env.GIT_SSH_COMMAND ?? '', /BatchMode=yes/);
    assert.equal(env.EXTRA, '1');
    assert.equal(env.PATH, process.env.PATH);
    assert.deepEqual(Object.keys(GIT_SETTINGS).sort(), ['GIT_ASKPASS', 'GIT_CONFIG_NOSYSTEM', 'GIT_SSH_COMMAND', 'GIT_TERMINAL_PROMPT', 'SSH_ASKPASS']);
  });

  it('git run with them ignores a system config it is pointed at', async () => {
    const withSystem = await runProcess('git', ['config', '--system', '--list'], { env: { ...process.env, GIT_CONFIG_SYSTEM: '/dev/null' } });
    assert.equal(withSystem.code, 0);
    const r = await runProcess('git', ['config', '--list', '--show-origin'], { env: gitEnvironment({ HOME: '/nonexistent' }) });
    assert.ok(!r.stdout.includes('file:/etc/gitconfig'), r.stdout);
  });
});
