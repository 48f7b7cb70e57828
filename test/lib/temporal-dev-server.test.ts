import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../lib/processes';
import { devServerEnvironment, findTemporalCli, MISSING_CLI_MESSAGE, startTemporalDevServer, type RunningDevServer } from '../../lib/temporal-dev-server';

describe("the Temporal dev server's share of the machine", () => {
  it('gets half the cores (at least one) for its Go runtime, unless GOMAXPROCS is set', () => {
    assert.equal(devServerEnvironment({ PATH: '/bin' }, 2).GOMAXPROCS, '1');
    assert.equal(devServerEnvironment({ PATH: '/bin' }, 1).GOMAXPROCS, '1');
    assert.equal(devServerEnvironment({ PATH: '/bin' }, 8).GOMAXPROCS, '4');
    assert.equal(devServerEnvironment({ PATH: '/bin' }, 8).PATH, '/bin', 'the rest of the environment is passed on');
    assert.equal(devServerEnvironment({ GOMAXPROCS: '3' }, 8).GOMAXPROCS, '3', "an operator's own setting is kept");
  });

  describe('a started dev server', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-devserver-'));
    let server: RunningDevServer | undefined;
    after(async () => {
      await server?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('runs with that GOMAXPROCS in its environment', async (t) => {
      if (process.env.GOMAXPROCS) return t.skip('GOMAXPROCS is set for this test run');
      const cli = findTemporalCli(path.resolve('.data'), process.env.TEMPORAL_CLI);
      if (!cli) throw new Error(MISSING_CLI_MESSAGE);
      server = await startTemporalDevServer({ cli, port: await freePort(), headless: true, namespace: 'default', logFile: path.join(dir, 'temporal.log') });
      const environ = fs.readFileSync(`/proc/${server.child.pid}/environ`, 'utf8').split('\0');
      assert.ok(environ.includes(`GOMAXPROCS=${Math.max(1, Math.floor(os.availableParallelism() / 2))}`), `the server's GOMAXPROCS: ${environ.filter((e) => e.startsWith('GOMAXPROCS')).join(', ') || 'none'}`);
    });
  });
});
