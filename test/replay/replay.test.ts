import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { committedHistories, replayAll } from '../support/histories';

describe('workflow replay', () => {
  it('histories recorded by earlier test runs replay against the current workflow code', async () => {
    const histories = committedHistories();
    assert.ok(histories.length >= 4, `expected recorded histories in test/fixtures/histories, found ${histories.length}`);
    const failures = await replayAll(histories);
    assert.deepEqual(failures, []);
  });
});
