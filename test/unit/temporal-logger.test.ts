import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../lib/logger';
import { PinoTemporalLogger, temporalLevelFor } from '../../worker/runtime';

function capture() {
  const chunks: string[] = [];
  const stream = new Writable({ write(chunk, _enc, done) { chunks.push(String(chunk)); done(); } });
  return { stream, lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("the Temporal SDK's messages in Ringmaster's log", () => {
  it("the SDK's routine INFO is dropped, its warnings kept with their fields", () => {
    const out = capture();
    const sdk = new PinoTemporalLogger(createLogger({ destination: out.stream, level: 'info' }), 'WARN');
    sdk.info('Worker state changed', { sdkComponent: 'worker', state: 'RUNNING' });
    sdk.warn('Activity failed', { sdkComponent: 'worker', activityType: 'checkBuilder' });
    const lines = out.lines();
    assert.equal(lines.length, 1);
    assert.equal(lines[0].msg, 'Activity failed');
    assert.equal(lines[0].level, 'warn');
    assert.equal(lines[0].activityType, 'checkBuilder');
  });

  it("Ringmaster's own activity and workflow messages keep the logger's level", () => {
    const out = capture();
    const sdk = new PinoTemporalLogger(createLogger({ destination: out.stream, level: 'info' }), 'WARN');
    sdk.info('no remote builders configured', { sdkComponent: 'activity' });
    sdk.debug('noise', { sdkComponent: 'activity' });
    assert.deepEqual(out.lines().map((l) => l.msg), ['no remote builders configured']);
  });

  it('LOG_LEVEL=debug lets the SDK say more; error and silent let it say less', () => {
    delete process.env.RINGMASTER_WORKER_LOG_LEVEL; // an explicit override would win
    assert.equal(temporalLevelFor(createLogger({ destination: capture().stream, level: 'info' })), 'WARN');
    assert.equal(temporalLevelFor(createLogger({ destination: capture().stream, level: 'debug' })), 'DEBUG');
    assert.equal(temporalLevelFor(createLogger({ destination: capture().stream, level: 'error' })), 'ERROR');
  });
});
