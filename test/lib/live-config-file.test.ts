import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LiveConfigFile } from '../../lib/live-config-file';
import { writeConfigFileAtomically } from '../../lib/config-file';

describe('the config file as running processes see it', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-live-config-'));
  const file = path.join(dir, 'ringmaster.json');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('without a file every setting is at its default', async () => {
    assert.deepEqual(await new LiveConfigFile(file, 0).current(), {});
  });

  it('a change on disk (another process PUT it) is read on the next look', async () => {
    const live = new LiveConfigFile(file, 0);
    await writeConfigFileAtomically(file, JSON.stringify({ builds: { log_limit_bytes: 1000 } }));
    assert.equal((await live.current()).builds?.log_limit_bytes, 1000);
    await writeConfigFileAtomically(file, JSON.stringify({ builds: { log_limit_bytes: 2000 }, require_auth_for_reads: true }));
    const now = await live.current();
    assert.equal(now.builds?.log_limit_bytes, 2000);
    assert.equal(now.require_auth_for_reads, true);
  });

  it('between checks the settings read are reused, and invalidate() forces a new read', async () => {
    const live = new LiveConfigFile(file, 60_000);
    await writeConfigFileAtomically(file, JSON.stringify({ require_auth_for_reads: false }));
    assert.equal((await live.current()).require_auth_for_reads, false);
    await writeConfigFileAtomically(file, JSON.stringify({ require_auth_for_reads: true }));
    assert.equal((await live.current()).require_auth_for_reads, false, 'not checked again yet');
    live.invalidate();
    assert.equal((await live.current()).require_auth_for_reads, true);
  });

  it('a file broken by hand keeps the last good settings in force and says why, once', async () => {
    const warnings: string[] = [];
    const live = new LiveConfigFile(file, 0, (m) => warnings.push(m));
    await writeConfigFileAtomically(file, JSON.stringify({ notifications: { max_attempts: 7 } }));
    assert.equal((await live.current()).notifications?.max_attempts, 7);
    await writeConfigFileAtomically(file, '{ "notifications": { "max_attempts": "many" } }');
    assert.equal((await live.current()).notifications?.max_attempts, 7);
    await writeConfigFileAtomically(file, '{ "notifications": { "max_attempts": "many" } } ');
    assert.equal((await live.current()).notifications?.max_attempts, 7);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /contents\.notifications\.max_attempts/);
  });
});
