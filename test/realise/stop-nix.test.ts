import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { KILL_GRACE_MS, STOP_NIX_SHELL_FUNCTION, childrenOf, stopNixProcess } from '../../activities/realise/stop-nix';
import { spawnNixStore } from '../../activities/realise/nix-process';
import { isGone, signal } from '../support/worker-process';
import { instantiateFixtures, waitUntil } from '../support/nix-fixtures';

/**
 * The stop of a `nix-store` (issue 6), locally (`stopNixProcess`) and as the shell function an SSH builder
 * runs (`stop_nix`), against real processes: a Nix that lost its SIGTERM goes on building, which a
 * process that ignores TERM and keeps starting children in sessions of their own stands for; and a real
 * `nix-store` whose sandboxed builder must not outlive it.
 */

/** A process group leader that ignores TERM and starts a `sleep` in a session of its own every `everyS` seconds (0: one, then none). */
function ignoringTerm(everyS: number): ChildProcess {
  const loop = everyS > 0 ? `while :; do setsid sleep 300 & sleep ${everyS}; done` : 'setsid sleep 300 & wait';
  return spawn('sh', ['-c', `trap '' TERM; ${loop}`], { detached: true, stdio: 'ignore' });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}

/** `stop_nix <pid>` in a shell of its own, as the worker runs it over SSH; resolves when it returns. */
function stopWithShell(pid: number): Promise<number | null> {
  const sh = spawn('sh', ['-c', `${STOP_NIX_SHELL_FUNCTION}\nstop_nix "$1"`, 'sh', String(pid)], { stdio: 'ignore' });
  return new Promise((resolve) => sh.once('exit', (code) => resolve(code)));
}

function killAll(pids: number[]) {
  for (const pid of pids) signal(pid, 'SIGKILL');
}

const ways = [
  { name: 'locally', stop: async (child: ChildProcess, graceMs?: number) => { stopNixProcess(child, graceMs === undefined ? {} : { graceMs }); await exited(child); } },
  { name: 'with the shell function', stop: async (child: ChildProcess) => { await stopWithShell(child.pid!); await exited(child); } },
];

describe('stopping a nix-store', () => {
  for (const way of ways) {
    it(`${way.name}: one that goes on starting builds after the TERM is killed at once, with its children`, async () => {
      const child = ignoringTerm(0.3);
      await waitUntil(() => childrenOf(child.pid!).length >= 1, 10_000);
      const t0 = Date.now();
      let kids: number[] = [];
      try {
        const stopping = way.stop(child);
        // Every child it has, also those it starts while being stopped.
        while (child.exitCode === null && child.signalCode === null && Date.now() - t0 < 15_000) {
          kids = [...new Set([...kids, ...childrenOf(child.pid!)])];
          await new Promise((r) => setTimeout(r, 20));
        }
        await stopping;
        const took = Date.now() - t0;
        assert.ok(took < KILL_GRACE_MS / 2, `stopped after ${took} ms, not at once`);
        assert.equal(child.signalCode, 'SIGKILL');
        await waitUntil(() => kids.every(isGone), 5_000);
      } finally {
        killAll([-child.pid!, ...kids]);
      }
    });

    it(`${way.name}: one that ignores the TERM and starts nothing is killed after the grace period, with its children`, async () => {
      const child = ignoringTerm(0);
      await waitUntil(() => childrenOf(child.pid!).length === 1, 10_000);
      const kids = childrenOf(child.pid!);
      const t0 = Date.now();
      try {
        await way.stop(child, 1_000);
        const took = Date.now() - t0;
        const grace = way.name === 'locally' ? 1_000 : KILL_GRACE_MS;
        assert.ok(took >= grace - 100 && took < grace + 3_000, `killed after ${took} ms, for a grace of ${grace} ms`);
        assert.equal(child.signalCode, 'SIGKILL');
        await waitUntil(() => kids.every(isGone), 5_000);
      } finally {
        killAll([-child.pid!, ...kids]);
      }
    });
  }

  it('with the shell function: one that ends on the TERM is not killed, and the stop returns at once', async () => {
    const child = spawn('sh', ['-c', 'sleep 300 & wait'], { detached: true, stdio: 'ignore' });
    await waitUntil(() => childrenOf(child.pid!).length === 1, 10_000);
    const t0 = Date.now();
    try {
      assert.equal(await stopWithShell(child.pid!), 0);
      await exited(child);
      assert.equal(child.signalCode, 'SIGTERM');
      assert.ok(Date.now() - t0 < 2_000, `returned after ${Date.now() - t0} ms`);
    } finally {
      killAll([-child.pid!]);
    }
  });

  it("a real nix-store that does not end on the TERM (stopped here) is killed after the grace period, and its sandboxed builder with it", async () => {
    const { sleepy } = await instantiateFixtures('sleepy = mk "stop-nix-sleepy" "echo started; exec /bin/sleep 300";');
    const child = spawnNixStore(['--realise', sleepy, '--option', 'substituters', '']);
    let log = '';
    child.stderr!.on('data', (b: Buffer) => (log += b.toString('utf8')));
    child.stdout!.resume();
    let builder: number[] = [];
    try {
      await waitUntil(() => log.includes('started') && (builder = childrenOf(child.pid!)).length > 0, 30_000);
      // A nix-store that cannot act on the TERM: it stays stopped until the KILL.
      process.kill(child.pid!, 'SIGSTOP');
      stopNixProcess(child, { graceMs: 500 });
      await exited(child);
      assert.equal(child.signalCode, 'SIGKILL');
      // Nix's builder is in a session of its own (and a PID namespace): the group's KILL alone left it running.
      await waitUntil(() => builder.every(isGone), 5_000);
    } finally {
      killAll([-child.pid!, ...builder.map((b) => -b), ...builder]);
    }
  });
});
