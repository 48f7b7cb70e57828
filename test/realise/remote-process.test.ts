import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { remoteBuildCommand } from '../../activities/realise/remote-process';
import { isGone } from '../support/worker-process';
import { waitUntil } from '../support/nix-fixtures';

/**
 * The command line a build runs under on an SSH builder, run here by the same `sh` (what sshd's login
 * shell runs; the SSH path itself is tested in remote.test.ts): its stdin stands for the SSH channel.
 */
function runWrapped(command: string[]) {
  const [file, ...args] = remoteBuildCommand(command);
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, stdout: () => stdout, exit };
}

describe('the remote build command', () => {
  it("prints the build's process group first, then passes its output and exit status through", async () => {
    const run = runWrapped(['sh', '-c', 'echo built; exit 7']);
    const { code } = await run.exit;
    assert.equal(code, 7);
    assert.match(run.stdout(), /^ringmaster-pgid \d+\nbuilt\n$/);
    run.child.stdin.end();
  });

  it('ends with the signal that killed the build, as the build did', async () => {
    const run = runWrapped(['sh', '-c', 'kill -KILL $$']);
    assert.equal((await run.exit).signal, 'SIGKILL');
    run.child.stdin.end();
  });

  it('EOF on its stdin (the SSH session is gone) kills the whole process group of the build', async () => {
    const run = runWrapped(['sh', '-c', 'sleep 300 & echo child $!; wait']);
    await waitUntil(() => /child \d+\n/.test(run.stdout()), 10_000);
    const group = Number(/^ringmaster-pgid (\d+)/.exec(run.stdout())![1]);
    const grandchild = Number(/child (\d+)/.exec(run.stdout())![1]);
    try {
      run.child.stdin.end();
      assert.equal((await run.exit).signal, 'SIGTERM');
      await waitUntil(() => isGone(grandchild) && isGone(group), 10_000);
    } finally {
      for (const pid of [-group, grandchild]) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone, as it should be */ }
      }
    }
  });

  it('EOF before the build has its process group (a worker killed as it started the build) stops it by TERM, not 5 s later by KILL', async () => {
    // The watcher may read EOF before the background job has called setsid: there is no group to signal yet.
    for (let round = 0; round < 10; round++) {
      const run = runWrapped(['sleep', '300']);
      run.child.stdin.end();
      const { signal } = await run.exit;
      const group = /^ringmaster-pgid (\d+)/.exec(run.stdout());
      if (group) {
        try { process.kill(-Number(group[1]), 'SIGKILL'); } catch { /* gone, as it should be */ }
      }
      assert.equal(signal, 'SIGTERM', `round ${round}: the build ended by ${signal}`);
    }
  });
});
