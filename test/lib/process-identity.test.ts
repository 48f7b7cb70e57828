import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { procStat } from '../../lib/processes';
import { hasCertainlyEnded, startTicksOf, thisProcessIdentity, type ProcessIdentity } from '../../lib/process-identity';

/** A child process that is running now, and its identity as it would record it. */
async function runningChild(script: string): Promise<{ child: ReturnType<typeof spawn>; identity: ProcessIdentity; output: () => string }> {
  const child = spawn('/bin/sh', ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  await once(child, 'spawn');
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const self = thisProcessIdentity()!;
  const startTicks = startTicksOf(child.pid!);
  assert.ok(startTicks, 'the child has a start time');
  return { child, identity: { ...self, pid: child.pid!, startTicks }, output: () => out };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('whether the process that ran a batch has ended (lib/process-identity.ts)', () => {
  it('this process is alive, and names its host, boot, PID namespace and start time', () => {
    const self = thisProcessIdentity();
    assert.ok(self);
    assert.equal(self.pid, process.pid);
    assert.match(self.bootId, /^[0-9a-f-]{36}$/);
    assert.match(self.pidNamespace, /^pid:\[\d+\]$/);
    assert.match(self.startTicks, /^\d+$/);
    assert.equal(hasCertainlyEnded(self), false);
  });

  it('a process that was killed has ended; while it ran it had not', async () => {
    const { child, identity } = await runningChild('exec sleep 30');
    assert.equal(hasCertainlyEnded(identity), false, 'running');
    child.kill('SIGKILL');
    await once(child, 'exit');
    assert.equal(hasCertainlyEnded(identity), true, 'killed and reaped');
  });

  it('a PID reused by a later process (another start time), or a machine booted since, means the process ended', () => {
    const self = thisProcessIdentity()!;
    assert.equal(hasCertainlyEnded({ ...self, startTicks: String(Number(self.startTicks) + 1) }), true, 'the PID now names another process');
    assert.equal(hasCertainlyEnded({ ...self, bootId: '00000000-0000-0000-0000-000000000000' }), true, 'another boot');
  });

  it('a killed process not yet reaped by its parent (a zombie) has ended', async () => {
    // The shell starts a background child, prints its PID, and becomes `sleep 30`, which never reaps it. The
    // child exits only once its parent is `sleep 30`, and then stays a zombie until `sleep 30` ends. (A
    // child that exited at once, `sleep 0`, was once reaped by the shell before its exec: CI found no zombie.)
    const { child, identity: parent, output } = await runningChild(
      `sh -c 'while [ "$(cat /proc/$PPID/comm)" != sleep ]; do sleep 0.01; done' & echo $!; exec sleep 30`,
    );
    try {
      for (let i = 0; i < 250 && !output().includes('\n'); i++) await pause(20);
      const zombiePid = Number(output().trim());
      assert.ok(zombiePid > 0, `the background PID was printed: ${JSON.stringify(output())}`);
      let state = '';
      for (let i = 0; i < 250 && state !== 'Z'; i++) {
        await pause(20);
        state = procStat(zombiePid)?.(3) ?? '';
      }
      assert.equal(state, 'Z', 'the background sleep is a zombie');
      const ticks = startTicksOf(zombiePid);
      assert.ok(ticks);
      assert.equal(hasCertainlyEnded({ ...parent, pid: zombiePid, startTicks: ticks }), true);
      assert.equal(hasCertainlyEnded(parent), false, 'its parent still runs');
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit').catch(() => undefined);
    }
  });

  it('a process on another host or in another PID namespace is never judged, dead or not', async () => {
    const { child, identity } = await runningChild('exec sleep 30');
    child.kill('SIGKILL');
    await once(child, 'exit');
    assert.equal(hasCertainlyEnded({ ...identity, host: `${identity.host}-elsewhere` }), false, 'another host');
    assert.equal(hasCertainlyEnded({ ...identity, pidNamespace: 'pid:[1]' }), false, 'another container');
    assert.equal(hasCertainlyEnded({ ...identity, host: 'elsewhere', bootId: 'another-boot' }), false, 'another host, booted since or not');
    assert.equal(hasCertainlyEnded(identity, null), false, 'nothing is concluded where this process has no identity');
  });
});
