import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { eventually } from '../support/pipeline';
import { RecordingServer } from '../support/recording-server';
import { spawnWorkerProcess } from '../support/worker-process';
import { configureNotifications, raiseBuildEvent, seedRunningBuild, taskRows, waitForTasks } from './support';

/**
 * A worker process is killed with SIGKILL while a notification is between retries; the next worker
 * process finishes the job: every status reaches the forge exactly once, in order.
 */

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}

describe('kill -9 of the worker while a notification waits for its next retry', () => {
  let stack: TestStack;
  let forge: RecordingServer;
  const workers: ChildProcess[] = [];
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-notify-kill-'));
  let buildId = '';

  before(async () => {
    stack = await startTestStack({ worker: false });
    // The forge fails every request until the test says otherwise (after the kill): no race with the retry timers.
    forge = await new RecordingServer({ status: 500 }).start();
    await configureNotifications(stack, { max_attempts: 10, retry_backoff_seconds: 1, targets: [{ type: 'github_status', name: 'forge', api_url: forge.url, token: 'ghp_kill_test' }] });
    workers.push(spawnWorkerProcess(stack, path.join(logDir, 'worker-1.log')));
    buildId = (await seedRunningBuild(stack, 'survivor')).build.id;
  });
  after(async () => {
    for (const w of workers) {
      if (w.pid !== undefined && w.exitCode === null && w.signalCode === null) {
        const gone = exited(w);
        process.kill(-w.pid, 'SIGTERM');
        const timer = setTimeout(() => process.kill(-w.pid!, 'SIGKILL'), 10_000);
        await gone;
        clearTimeout(timer);
      }
    }
    await stack?.stop();
    await forge?.stop();
    fs.rmSync(logDir, { recursive: true, force: true });
  });

  it('the pending status fails twice at the forge, the success is queued behind it, and then the worker is killed', async () => {
    await raiseBuildEvent(stack, buildId, 'build_started');
    await eventually('the first failed delivery', async () => (forge.requests.length >= 1 ? true : undefined), 90_000, 50);
    await raiseBuildEvent(stack, buildId, 'build_finished', 'succeeded');
    await eventually('the second failed delivery', async () => (forge.requests.length >= 2 ? true : undefined), 30_000, 20);
    const worker = workers[0];
    const gone = exited(worker);
    process.kill(-worker.pid!, 'SIGKILL');
    await gone;
    assert.equal(worker.signalCode, 'SIGKILL');
    assert.equal(forge.delivered().length, 0, 'nothing was delivered before the kill');
    const rows = await taskRows(stack, { target_name: 'forge' });
    assert.deepEqual(rows.map((r) => r.state), ['pending', 'success']);
    assert.ok(rows.every((r) => ['pending', 'running'].includes(r.status)), 'both tasks still open');
  });

  it('a new worker process delivers both statuses exactly once, pending before success', async () => {
    forge.behaviour = {};
    workers.push(spawnWorkerProcess(stack, path.join(logDir, 'worker-2.log')));
    const rows = await waitForTasks(stack, { target_name: 'forge' }, ['completed'], 120_000);
    const delivered = forge.delivered();
    assert.deepEqual(delivered.map((r) => r.json.state), ['pending', 'success'], 'in order');
    // Exactly once: each task's status reached the forge in one successful request; the failures before were only failures.
    assert.equal(delivered.length, 2);
    assert.deepEqual(forge.requests.map((r) => r.answered).filter((s) => s < 300).length, 2);
    assert.equal(rows[0].attempts, forge.requests.filter((r) => r.json.state === 'pending').length, 'every attempt at the pending status is counted across both workers');
    assert.ok(rows[0].attempts >= 3, `the pending status needed ${rows[0].attempts} attempts`);
    assert.equal(rows[1].attempts, 1);
  });
});
