import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { once } from 'node:events';
import { autogroupsEnabled, setSessionNice } from '../../lib/process-priority';

/** A `sleep` in a session of its own, as Ringmaster spawns Nix (detached). */
async function sessionLeader(): Promise<ChildProcess> {
  const child = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
  await once(child, 'spawn');
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

const autogroupNice = (pid: number) => Number(/nice (-?\d+)/.exec(fs.readFileSync(`/proc/${pid}/autogroup`, 'utf8'))![1]);
const autogroupsOn = autogroupsEnabled();

describe('a session leader\'s nice value (lib/process-priority.ts)', () => {
  it('sets the session\'s autogroup and the process\'s own nice, lower and then higher', async () => {
    const mine = os.getPriority();
    const child = await sessionLeader();
    try {
      const pid = child.pid!;
      // Its own session: another autogroup than this process's.
      if (autogroupsOn) assert.notEqual(fs.readFileSync(`/proc/${pid}/autogroup`, 'utf8').split(' ')[0], fs.readFileSync('/proc/self/autogroup', 'utf8').split(' ')[0]);
      assert.deepEqual(setSessionNice(pid, -7), { applied: true });
      assert.equal(os.getPriority(pid), -7);
      if (autogroupsOn) assert.equal(autogroupNice(pid), -7);
      assert.deepEqual(setSessionNice(pid, 4), { applied: true });
      assert.equal(os.getPriority(pid), 4);
      if (autogroupsOn) assert.equal(autogroupNice(pid), 4);
      // This process is untouched.
      assert.equal(os.getPriority(), mine);
    } finally {
      await stop(child);
    }
  });

  it('a process that has exited is not applied, with the reason, and nothing throws', async () => {
    const child = await sessionLeader();
    const pid = child.pid!;
    await stop(child);
    const result = setSessionNice(pid, -3);
    assert.equal(result.applied, false);
    assert.match(result.error ?? '', /ESRCH/);
  });

  it('a value outside -20..19 is refused before anything is changed', async () => {
    const child = await sessionLeader();
    const before = os.getPriority(child.pid!);
    try {
      for (const bad of [-21, 20, 1.5, Number.NaN]) assert.throws(() => setSessionNice(child.pid!, bad), RangeError);
      assert.equal(os.getPriority(child.pid!), before);
    } finally {
      await stop(child);
    }
  });
});
