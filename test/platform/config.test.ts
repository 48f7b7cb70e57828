import path from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../lib/config';

describe('loadConfig', () => {
  it('with an empty environment gives the documented defaults', () => {
    const config = loadConfig({});
    assert.equal(config.port, 3000);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.dataDir, path.resolve('.data'));
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.temporalAddress, undefined);
    assert.equal(config.temporalNamespace, 'default');
    assert.equal(config.taskQueue, 'ringmaster');
    assert.equal(config.temporalPort, 7233);
    assert.equal(config.temporalUiPort, 8233);
    assert.equal(config.configFile, path.resolve('.data', 'ringmaster.json'));
    assert.equal(config.requireAuthForReads, false);
    assert.equal(config.logLevel, 'info');
    assert.equal(config.maxCachedWorkflows, 500);
    assert.equal(config.workerOptimizeForSize, true);
    assert.equal(config.evaluatorNice, -10);
  });

  it('reads every setting from the environment it is given, not only process.env', () => {
    const config = loadConfig({
      PORT: '4100',
      HOST: '127.0.0.1',
      RINGMASTER_DATA_DIR: '/srv/ringmaster',
      DATABASE_URL: 'postgres://u:p@db:5432/rm',
      TEMPORAL_ADDRESS: 'temporal:7233',
      TEMPORAL_NAMESPACE: 'ci',
      RINGMASTER_TASK_QUEUE: 'rm-queue',
      TEMPORAL_PORT: '7300',
      TEMPORAL_UI_PORT: '8300',
      RINGMASTER_REQUIRE_AUTH_FOR_READS: 'yes',
      RINGMASTER_PUBLIC_URL: 'https://ci.example.org',
      LOG_LEVEL: 'debug',
      RINGMASTER_MAX_CACHED_WORKFLOWS: '1200',
      RINGMASTER_WORKER_OPTIMIZE_FOR_SIZE: 'false',
      RINGMASTER_EVALUATOR_NICE: '-3',
    });
    assert.equal(config.port, 4100);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.dataDir, '/srv/ringmaster');
    assert.equal(config.configFile, '/srv/ringmaster/ringmaster.json');
    assert.equal(config.databaseUrl, 'postgres://u:p@db:5432/rm');
    assert.equal(config.temporalAddress, 'temporal:7233');
    assert.equal(config.temporalNamespace, 'ci');
    assert.equal(config.taskQueue, 'rm-queue');
    assert.equal(config.temporalPort, 7300);
    assert.equal(config.temporalUiPort, 8300);
    assert.equal(config.requireAuthForReads, true);
    assert.equal(config.publicUrl, 'https://ci.example.org');
    assert.equal(config.logLevel, 'debug');
    assert.equal(config.maxCachedWorkflows, 1200);
    assert.equal(config.workerOptimizeForSize, false);
    assert.equal(config.evaluatorNice, -3);
  });

  it('the evaluator\'s nice value is an integer from -20 to 19; anything else is refused, naming the variable', () => {
    for (const [raw, nice] of [['0', 0], ['19', 19], ['-20', -20], [' 5 ', 5], ['+2', 2]] as const) assert.equal(loadConfig({ RINGMASTER_EVALUATOR_NICE: raw }).evaluatorNice, nice);
    for (const raw of ['-21', '20', '1.5', 'high', '-', '0x5']) {
      assert.throws(() => loadConfig({ RINGMASTER_EVALUATOR_NICE: raw }), /RINGMASTER_EVALUATOR_NICE must be an integer from -20 to 19/, raw);
    }
  });

  it('a port that is not a number is refused, naming the variable', () => {
    assert.throws(() => loadConfig({ PORT: 'eighty' }), /PORT must be a non-negative integer/);
    assert.throws(() => loadConfig({ TEMPORAL_UI_PORT: '-1' }), /TEMPORAL_UI_PORT/);
  });
});
