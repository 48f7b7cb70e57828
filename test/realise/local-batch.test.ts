import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { realiseBatchLocally } from '../../activities/realise/local-batch';
import { NixJsonLogParser, type NixBuildEvent } from '../../activities/realise/nix-json-log';
import { nixJsonLogFeed } from '../../activities/realise/batch-run';
import { instantiateFixtures } from '../support/nix-fixtures';
import { runProcess } from '../../lib/process-runner';

/** Realises a batch and returns what Nix reported, in order. */
async function runBatch(drvPaths: string[], slots: number, timeoutSeconds = 60): Promise<{ events: NixBuildEvent[]; exitCode: number | null }> {
  const events: NixBuildEvent[] = [];
  const run = realiseBatchLocally(drvPaths, { slots, timeoutSeconds, maxSilentSeconds: 30, onEvent: (e) => events.push(e) });
  const { exitCode } = await run.finished;
  return { events, exitCode };
}

const of = (events: NixBuildEvent[], kind: NixBuildEvent['kind'], drvPath: string) => events.filter((e) => e.kind === kind && 'drvPath' in e && e.drvPath === drvPath);

describe('one nix-store realises a batch (issue 6)', () => {
  it("reads Nix's internal-json lines: a build's start names its .drv, its log lines follow it, the builds' count says when one ended", () => {
    const parser = new NixJsonLogParser();
    const drv = '/nix/store/aaaa-x.drv';
    assert.deepEqual(parser.parseLine(`@nix {"action":"start","fields":["${drv}","",1,1],"id":7,"level":3,"text":"building","type":105}`), [{ kind: 'build_started', drvPath: drv }]);
    assert.deepEqual(parser.parseLine('@nix {"action":"result","fields":["hello"],"id":7,"type":101}'), [{ kind: 'log_line', drvPath: drv, line: 'hello' }]);
    assert.deepEqual(parser.parseLine('@nix {"action":"result","fields":[1,2,0,0],"id":3,"type":105}'), [], 'progress of other activities is not an end');
    assert.deepEqual(parser.parseLine('@nix {"action":"start","id":4,"level":0,"text":"","type":104}'), []);
    assert.deepEqual(parser.parseLine('@nix {"action":"result","fields":[0,2,1,0],"id":4,"type":105}'), [], 'one running, none ended');
    assert.deepEqual(parser.parseLine('@nix {"action":"result","fields":[1,2,1,0],"id":4,"type":105}'), [{ kind: 'build_ended', ended: 1 }]);
    assert.deepEqual(parser.parseLine('@nix {"action":"result","fields":[1,2,0,0],"id":4,"type":105}'), [], 'the same count again');
    assert.deepEqual(parser.parseLine('@nix {"action":"result","fields":[1,2,0,1],"id":4,"type":105}'), [{ kind: 'build_ended', ended: 2 }], 'a failure ends a build too');
    assert.deepEqual(parser.parseLine('@nix {"action":"msg","level":3,"msg":"these 5 derivations will be built:"}'), [{ kind: 'will_build', count: 5 }]);
    assert.deepEqual(parser.parseLine('@nix {"action":"msg","level":3,"msg":"this derivation will be built:"}'), [{ kind: 'will_build', count: 1 }]);
    assert.deepEqual(
      parser.parseLine(`@nix {"action":"msg","level":0,"msg":"\\u001b[31;1merror:\\u001b[0m builder for '\\u001b[35;1m${drv}\\u001b[0m' failed with exit code 3"}`),
      [{ kind: 'build_failed', drvPath: drv, failure: 'failed', message: `builder for '${drv}' failed with exit code 3` }],
    );
    assert.equal((parser.parseLine(`@nix {"action":"msg","level":0,"msg":"error: building of '${drv}!*' from .drv file timed out after 2 seconds"}`)[0] as { failure: string }).failure, 'timeout');
    assert.equal((parser.parseLine(`@nix {"action":"msg","level":0,"msg":"error: 1 dependencies of derivation '${drv}' failed to build"}`)[0] as { failure: string }).failure, 'dependency_failed');
    assert.deepEqual(parser.parseLine('not json'), [{ kind: 'other', line: 'not json' }]);
  });

  it("reads Nix's stderr in chunks split anywhere (inside a line, inside a UTF-8 character), as it comes over SSH, into the same events", () => {
    const drv = '/nix/store/aaaa-x.drv';
    const text = [
      `@nix {"action":"start","fields":["${drv}","",1,1],"id":7,"level":3,"text":"building","type":105}`,
      '@nix {"action":"result","fields":["héllo ✓"],"id":7,"type":101}',
      'a plain line\r',
      '@nix {"action":"result","fields":["last, without a newline"],"id":7,"type":101}',
    ].join('\n');
    const bytes = Buffer.from(text, 'utf8');
    const whole: NixBuildEvent[] = [];
    const feedWhole = nixJsonLogFeed((e) => whole.push(e));
    feedWhole.write(bytes);
    feedWhole.end();
    assert.deepEqual(whole, [
      { kind: 'build_started', drvPath: drv },
      { kind: 'log_line', drvPath: drv, line: 'héllo ✓' },
      { kind: 'other', line: 'a plain line' },
      { kind: 'log_line', drvPath: drv, line: 'last, without a newline' },
    ]);
    const split: NixBuildEvent[] = [];
    const feedSplit = nixJsonLogFeed((e) => split.push(e));
    for (let i = 0; i < bytes.length; i += 3) feedSplit.write(bytes.subarray(i, i + 3));
    feedSplit.end();
    assert.deepEqual(split, whole);
  });

  it('builds members and the inputs they need in dependency order; a failing member leaves the others built and its dependent not built', async () => {
    const drvs = await instantiateFixtures(`
      a = mk "a" "echo line of a; echo a > $out";
      c = mk "c" "echo line of c; /bin/cat \${a} > $out";
      bad = mk "bad" "echo failing; exit 3";
      d = mk "d" "/bin/cat \${bad} > $out";
      top = mk "top" "/bin/cat \${c} > $out";`);
    // a is not a member: Nix builds it along as an input of c.
    const { events, exitCode } = await runBatch([drvs.c, drvs.bad, drvs.d, drvs.top], 2);
    assert.equal(exitCode, 100, 'a build failed');
    assert.deepEqual(events.filter((e) => e.kind === 'will_build'), [{ kind: 'will_build', count: 5 }], 'a, c, top, bad and d');
    for (const built of [drvs.a, drvs.c, drvs.top]) {
      assert.equal(of(events, 'build_started', built).length, 1, `${built} started once`);
      assert.equal(of(events, 'build_failed', built).length, 0);
    }
    assert.equal(events.filter((e) => e.kind === 'build_ended').length, 4, 'a, c, top and bad ended');
    assert.deepEqual(of(events, 'log_line', drvs.c).map((e) => (e as { line: string }).line), ['line of c']);
    const order = events.filter((e) => e.kind === 'build_started').map((e) => (e as { drvPath: string }).drvPath);
    assert.ok(order.indexOf(drvs.a) < order.indexOf(drvs.c) && order.indexOf(drvs.c) < order.indexOf(drvs.top), 'inputs first');
    assert.equal((of(events, 'build_failed', drvs.bad)[0] as { failure: string }).failure, 'failed');
    assert.equal(of(events, 'build_started', drvs.d).length, 0, 'the dependent of the failure is not built');
    assert.equal((of(events, 'build_failed', drvs.d)[0] as { failure: string }).failure, 'dependency_failed');
  });

  it("a member past Nix's --timeout fails as timeout while the others are built", async () => {
    const drvs = await instantiateFixtures(`
      slow = mk "slow" "/bin/sleep 20; echo > $out";
      quick = mk "quick" "echo > $out";`);
    const { events } = await runBatch([drvs.slow, drvs.quick], 2, 1);
    assert.equal((of(events, 'build_failed', drvs.slow)[0] as { failure: string }).failure, 'timeout');
    assert.equal(of(events, 'build_started', drvs.quick).length, 1);
    assert.equal(of(events, 'build_failed', drvs.quick).length, 0);
  });

  it('stop() kills the whole process group: the batch ends at once', async () => {
    const drvs = await instantiateFixtures(`long = mk "long" "/bin/sleep 30; echo > $out";`);
    const run = realiseBatchLocally([drvs.long], { slots: 1, timeoutSeconds: 0, maxSilentSeconds: 0, onEvent: (e) => e.kind === 'build_started' && run.stop() });
    const started = Date.now();
    await run.finished;
    assert.ok(Date.now() - started < 15_000, 'stopped long before the 30 s sleep');
  });
  it("keeps no copy of the log in Nix's own log folder: the lines reach Ringmaster through the events alone", async () => {
    const drvs = await instantiateFixtures(`logged = mk "logged" "echo a line Ringmaster keeps; echo x > $out";`);
    const { events, exitCode } = await runBatch([drvs.logged], 1);
    assert.equal(exitCode, 0);
    assert.deepEqual(of(events, 'log_line', drvs.logged).map((e) => (e as { line: string }).line), ['a line Ringmaster keeps']);
    const readLog = await runProcess('nix-store', ['--read-log', drvs.logged]);
    assert.notEqual(readLog.code, 0, `nix-store --read-log found a log: ${readLog.stdout}`);
    assert.match(readLog.stderr, /not available/);
  });
});
