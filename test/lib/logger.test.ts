import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { componentLogger, createLogger, logLevelFrom } from '../../lib/logger';

/** A destination that keeps every JSON line the logger writes. */
function capture(): { stream: Writable; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({ write(chunk, _enc, done) { chunks.push(String(chunk)); done(); } });
  return { stream, lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}

describe('the structured logger', () => {
  it('writes one JSON object a line, with level, time, component and message', () => {
    const out = capture();
    componentLogger('build', createLogger({ destination: out.stream, level: 'info' })).info({ job: 'hello' }, 'build finished');
    const [line] = out.lines();
    assert.equal(line.level, 'info');
    assert.equal(line.component, 'build');
    assert.equal(line.job, 'hello');
    assert.equal(line.msg, 'build finished');
    assert.match(String(line.time), /^\d{4}-\d\d-\d\dT/);
  });

  it('honours LOG_LEVEL: at warn, info lines are dropped', () => {
    const out = capture();
    const logger = createLogger({ destination: out.stream, level: 'warn' });
    logger.info('routine');
    logger.warn('trouble');
    assert.deepEqual(out.lines().map((l) => l.msg), ['trouble']);
  });

  it('an unknown LOG_LEVEL falls back to info, and says so', () => {
    assert.equal(logLevelFrom('loud'), 'info');
    assert.equal(logLevelFrom('WARNING'), 'warn');
    assert.equal(logLevelFrom(' Debug '), 'debug');
    const out = capture();
    createLogger({ destination: out.stream, level: 'loud' }).info('hello');
    const lines = out.lines();
    assert.match(String(lines[0].msg), /LOG_LEVEL "loud" is not one of/);
    assert.equal(lines[1].msg, 'hello');
  });

  it('secret fields passed by mistake are redacted, at the top level and nested', () => {
    const out = capture();
    const key = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----';
    createLogger({ destination: out.stream, level: 'info' }).info(
      { ssh_private_key: key, builder: { name: 'b1', ssh_private_key: key, password: 'hunter22' }, req: { headers: { authorization: 'Bearer rk_secret' } }, api_key: 'rk_secret' },
      'builder saved',
    );
    const text = JSON.stringify(out.lines());
    assert.ok(!text.includes('PRIVATE KEY'), text);
    assert.ok(!text.includes('hunter22'), text);
    assert.ok(!text.includes('rk_secret'), text);
    const [line] = out.lines() as Array<Record<string, any>>;
    assert.equal(line.ssh_private_key, '[redacted]');
    assert.equal(line.builder.ssh_private_key, '[redacted]');
    assert.equal(line.builder.name, 'b1');
  });

  it('two objects deep (arrays too), in child bindings, never deeper, and the caller\'s objects are left as they were', () => {
    const out = capture();
    const passed = { users: [{ name: 'u1', password: 'hunter22' }], a: { b: { token: 'rk_deep2' } }, deeper: { a: { b: { token: 'kept-three-deep' } } }, at: new Date(0) };
    const logger = createLogger({ destination: out.stream, level: 'info' }).child({ component: 'test', secret: 'rk_binding' });
    logger.info(passed, 'nested');
    const [line] = out.lines() as Array<Record<string, any>>;
    assert.equal(line.users[0].password, '[redacted]');
    assert.equal(line.users[0].name, 'u1');
    assert.equal(line.a.b.token, '[redacted]');
    assert.equal(line.secret, '[redacted]');
    assert.equal(line.component, 'test');
    assert.equal(line.at, new Date(0).toISOString());
    // As pino's redact paths did: `field`, `*.field`, `*.*.field`, and no deeper.
    assert.equal(line.deeper.a.b.token, 'kept-three-deep');
    assert.equal(passed.users[0].password, 'hunter22', "the caller's object is not changed");
    assert.equal(passed.a.b.token, 'rk_deep2');
  });
});
