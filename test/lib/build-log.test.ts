import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BuildLogWriter, compressedLogPath, followBuildLog, liveLogPath, readBuildLog } from '../../lib/build-log';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('build log store', () => {
  let dataDir: string;
  before(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-build-log-'));
  });
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('places logs under logs/<first two characters>/<id>.log, and .gz beside', () => {
    const id = 'ab12cd34-0000-4000-8000-000000000000';
    assert.equal(liveLogPath('/data', id), `/data/logs/ab/${id}.log`);
    assert.equal(compressedLogPath('/data', id), `/data/logs/ab/${id}.log.gz`);
    assert.throws(() => liveLogPath('/data', '../../etc/passwd'));
  });

  it('a writer appends, counts bytes, and finish() leaves only a .gz with the same text', async () => {
    const id = crypto.randomUUID();
    const writer = await BuildLogWriter.open(dataDir, id);
    await writer.append('building\n');
    await writer.append('héllo wörld\n');
    assert.equal(writer.bytes, Buffer.byteLength('building\nhéllo wörld\n'));
    assert.equal(await readBuildLog(dataDir, id), 'building\nhéllo wörld\n');
    const gz = await writer.finish();
    assert.equal(gz, compressedLogPath(dataDir, id));
    assert.equal(fs.existsSync(liveLogPath(dataDir, id)), false);
    assert.equal(zlib.gunzipSync(fs.readFileSync(gz)).toString('utf8'), 'building\nhéllo wörld\n');
    assert.equal(await readBuildLog(dataDir, id), 'building\nhéllo wörld\n');
    assert.equal(await writer.finish(), gz, 'a second finish() is harmless');
    await assert.rejects(writer.append('late\n'));
  });

  it('a log of any size compresses to one gzip member of the same text: a few lines (compressed at once), over 64 KiB (in memory), over 4 MiB (streamed)', async () => {
    for (const bytes of [40, 100 * 1024, 5 * 1024 * 1024]) {
      const id = crypto.randomUUID();
      const writer = await BuildLogWriter.open(dataDir, id);
      const line = 'a line of the build, with ünïcode\n';
      const text = line.repeat(Math.ceil(bytes / Buffer.byteLength(line)));
      await writer.append(text);
      await writer.close();
      const gz = await BuildLogWriter.compressLive(dataDir, id);
      assert.equal(gz, compressedLogPath(dataDir, id), `${bytes} bytes`);
      assert.equal(fs.existsSync(liveLogPath(dataDir, id)), false, `${bytes} bytes: no live file left`);
      assert.equal(zlib.gunzipSync(fs.readFileSync(gz!)).toString('utf8'), text, `${bytes} bytes`);
      assert.deepEqual(fs.readdirSync(path.dirname(gz!)).filter((f) => f.startsWith(id) && f.endsWith('.tmp')), [], `${bytes} bytes: no temporary file left`);
      assert.equal(await BuildLogWriter.compressLive(dataDir, id), gz, `${bytes} bytes: compressing again finds the .gz`);
    }
  });

  it('close() (a step ended) keeps the live file, which the next writer of the build continues', async () => {
    const id = crypto.randomUUID();
    const step = await BuildLogWriter.open(dataDir, id);
    void step.append('step one\n');
    await step.close();
    await step.close();
    await assert.rejects(step.append('late\n'));
    assert.equal(fs.readFileSync(liveLogPath(dataDir, id), 'utf8'), 'step one\n');
    const build = await BuildLogWriter.open(dataDir, id);
    await build.append('step two\n');
    await build.finish();
    assert.equal(await readBuildLog(dataDir, id), 'step one\nstep two\n');
  });

  it('a line that comes after the writer closed is appended late: to the live file, or into the one gzip member of a finished log', async () => {
    // Closed, not yet compressed (a build whose workflow finishes it later): the live file grows.
    const stepped = crypto.randomUUID();
    const step = await BuildLogWriter.open(dataDir, stepped);
    await step.append('first\n');
    await step.close();
    await BuildLogWriter.appendLate(dataDir, stepped, 'late one\n');
    assert.equal(fs.readFileSync(liveLogPath(dataDir, stepped), 'utf8'), 'first\nlate one\n');
    assert.equal(fs.existsSync(compressedLogPath(dataDir, stepped)), false);

    // Finished (compressed, live file gone): the .gz is written again, still a single member.
    const finished = crypto.randomUUID();
    const writer = await BuildLogWriter.open(dataDir, finished);
    await writer.append('héllo\n');
    const gz = await writer.finish();
    await BuildLogWriter.appendLate(dataDir, finished, 'late wörld\n');
    await BuildLogWriter.appendLate(dataDir, finished, 'later\n');
    assert.equal(fs.existsSync(liveLogPath(dataDir, finished)), false, 'no live file comes back');
    assert.equal(await readBuildLog(dataDir, finished), 'héllo\nlate wörld\nlater\n');
    const bytes = fs.readFileSync(gz);
    const members = bytes.reduce((n, b, i) => n + (b === 0x1f && bytes[i + 1] === 0x8b && bytes[i + 2] === 8 ? 1 : 0), 0);
    assert.equal(members, 1, 'one gzip member (clients that stop after the first member still get every line)');
    assert.deepEqual(fs.readdirSync(path.dirname(gz)).filter((f) => f.includes(finished) && f.endsWith('.tmp')), [], 'no temporary file is left');

    // No log at all yet: the line starts the live file.
    const none = crypto.randomUUID();
    await BuildLogWriter.appendLate(dataDir, none, 'only\n');
    assert.equal(await readBuildLog(dataDir, none), 'only\n');
  });

  it('a late line appended while the log is being compressed is in the compressed log, and no live file is left', async () => {
    // The batch appends a late line (its build was found done before the line arrived) while the build's
    // workflow compresses the closed live file (finishBuild): in any interleaving the line must end up in
    // the .gz, which must be the only copy left.
    for (let i = 0; i < 40; i++) {
      const id = crypto.randomUUID();
      const writer = await BuildLogWriter.open(dataDir, id);
      await writer.append('built\n');
      await writer.close();
      // Started together, the append a few event loop turns after the compression (0 to 7).
      const compressed = BuildLogWriter.compressLive(dataDir, id);
      for (let turn = 0; turn < i % 8; turn++) await new Promise((r) => setImmediate(r));
      await Promise.all([compressed, BuildLogWriter.appendLate(dataDir, id, `late ${i}\n`)]);
      assert.equal(fs.existsSync(liveLogPath(dataDir, id)), false, `round ${i}: no live file is left beside the .gz`);
      assert.equal(zlib.gunzipSync(fs.readFileSync(compressedLogPath(dataDir, id))).toString('utf8'), `built\nlate ${i}\n`, `round ${i}`);
    }
  });

  it('a late line appended by another process while the log is being compressed is in the compressed log', async () => {
    // The batch that appends a late line and the workflow that compresses the log can run in two worker
    // processes. A second process appends while this one compresses, each round started at the same time
    // give or take a few milliseconds; the log is 200 KiB, so the compression's read, write, rename and
    // delete take a few milliseconds too (in memory, on libuv's thread pool).
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, '..', 'support', 'late-log-appender.ts'), dataDir], { stdio: ['pipe', 'pipe', 'inherit'] });
    const answers = readline.createInterface({ input: child.stdout! });
    const waiting = new Map<string, (answer: string) => void>();
    answers.on('line', (line) => waiting.get(line.split(' ')[0])?.(line));
    try {
      const body = 'x'.repeat(99) + '\n';
      const built = body.repeat(2048);
      for (let i = 0; i < 60; i++) {
        const id = crypto.randomUUID();
        const writer = await BuildLogWriter.open(dataDir, id);
        await writer.append(built);
        await writer.close();
        const appended = new Promise<string>((resolve) => waiting.set(id, resolve));
        child.stdin!.write(`${id} late ${i}\n`);
        await new Promise((r) => setTimeout(r, i % 6));
        const gz = await BuildLogWriter.compressLive(dataDir, id);
        assert.equal(await appended, id, `round ${i}: the other process appended`);
        waiting.delete(id);
        // The append may have come after the compression: then it went into the .gz as well.
        assert.equal(gz, compressedLogPath(dataDir, id));
        assert.equal(fs.existsSync(liveLogPath(dataDir, id)), false, `round ${i}: no live file is left beside the .gz`);
        assert.equal(zlib.gunzipSync(fs.readFileSync(gz!)).toString('utf8'), `${built}late ${i}\n`, `round ${i}: the late line is in the compressed log`);
        assert.equal(fs.existsSync(`${liveLogPath(dataDir, id)}.lock`), false, `round ${i}: no lock is left`);
      }
    } finally {
      child.stdin!.end();
      await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
    }
  });

  it('a lock left by a process that died holding it is taken over once stale', async () => {
    const id = crypto.randomUUID();
    const writer = await BuildLogWriter.open(dataDir, id);
    await writer.append('built\n');
    await writer.close();
    const lock = `${liveLogPath(dataDir, id)}.lock`;
    fs.mkdirSync(lock);
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(lock, old, old);
    const gz = await BuildLogWriter.compressLive(dataDir, id);
    assert.equal(zlib.gunzipSync(fs.readFileSync(gz!)).toString('utf8'), 'built\n');
    assert.equal(fs.existsSync(lock), false);
  });

  it('appends that are not awaited are written in order', async () => {
    const id = crypto.randomUUID();
    const writer = await BuildLogWriter.open(dataDir, id);
    const lines = Array.from({ length: 200 }, (_, i) => `line ${i}\n`);
    await Promise.all(lines.map((l) => writer.append(l)));
    await writer.finish();
    assert.equal(await readBuildLog(dataDir, id), lines.join(''));
  });

  it('a retried activity continues the existing live file', async () => {
    const id = crypto.randomUUID();
    const first = await BuildLogWriter.open(dataDir, id);
    await first.append('attempt 1\n');
    // the first attempt dies without finishing
    const second = await BuildLogWriter.open(dataDir, id);
    assert.equal(second.bytes, 'attempt 1\n'.length);
    await second.append('attempt 2\n');
    await second.finish();
    assert.equal(await readBuildLog(dataDir, id), 'attempt 1\nattempt 2\n');
  });

  it('a build without a log reads as undefined', async () => {
    assert.equal(await readBuildLog(dataDir, crypto.randomUUID()), undefined);
  });

  it('a follower of a finished build gets the whole log once, from the .gz', async () => {
    const id = crypto.randomUUID();
    const writer = await BuildLogWriter.open(dataDir, id);
    await writer.append('one\ntwo\n');
    await writer.finish();
    const chunks: string[] = [];
    await followBuildLog(dataDir, id, { isFinished: async () => true, signal: new AbortController().signal, onChunk: (t) => chunks.push(t) });
    assert.equal(chunks.join(''), 'one\ntwo\n');
  });

  it('a follower gets every line exactly once across the live → gz switch', async () => {
    const id = crypto.randomUUID();
    const chunks: string[] = [];
    const writer = await BuildLogWriter.open(dataDir, id);
    await writer.append('before the follower\n');
    const expected: string[] = ['before the follower\n'];
    let switchNow = false;
    const lastLine = 'last line, only in the gz when the follower looks again\n';
    const following = followBuildLog(dataDir, id, {
      // The switch happens at the worst moment: after the follower has read the live file, the
      // writer appends one more line, compresses and deletes the live file, and the build ends.
      isFinished: async () => {
        if (!switchNow) return false;
        await writer.append(lastLine);
        await writer.finish();
        return true;
      },
      signal: new AbortController().signal,
      onChunk: (t) => chunks.push(t),
      pollMs: 20,
    });
    for (let i = 0; i < 30; i++) {
      const line = `line ${i} ${'x'.repeat(i)}\n`;
      expected.push(line);
      await writer.append(line);
      if (i % 5 === 0) await sleep(15);
    }
    while (chunks.join('') !== expected.join('')) await sleep(5);
    assert.ok(chunks.length > 1, 'the log arrived in several chunks while it grew');
    switchNow = true;
    expected.push(lastLine);
    await following;
    assert.equal(fs.existsSync(liveLogPath(dataDir, id)), false, 'the live file was gone when the follower finished');
    assert.equal(chunks.join(''), expected.join(''));
  });

  it('a follower that started before the live file existed sees it appear', async () => {
    const id = crypto.randomUUID();
    let finished = false;
    const chunks: string[] = [];
    const following = followBuildLog(dataDir, id, { isFinished: async () => finished, signal: new AbortController().signal, onChunk: (t) => chunks.push(t), pollMs: 20 });
    await sleep(50);
    const writer = await BuildLogWriter.open(dataDir, id);
    await writer.append('appeared\n');
    // The build still runs (finished is false), so the line can only arrive by following the live file.
    while (chunks.join('') !== 'appeared\n') await sleep(5);
    finished = true;
    await writer.finish();
    await following;
    assert.equal(chunks.join(''), 'appeared\n');
  });

  it('a multi-byte character split across appends arrives whole', async () => {
    const id = crypto.randomUUID();
    const live = liveLogPath(dataDir, id);
    fs.mkdirSync(path.dirname(live), { recursive: true });
    const euro = Buffer.from('€\n', 'utf8');
    fs.writeFileSync(live, euro.subarray(0, 1));
    let finished = false;
    const chunks: string[] = [];
    const following = followBuildLog(dataDir, id, { isFinished: async () => finished, signal: new AbortController().signal, onChunk: (t) => chunks.push(t), pollMs: 20 });
    await sleep(60);
    fs.appendFileSync(live, euro.subarray(1));
    await sleep(60);
    finished = true;
    await following;
    assert.equal(chunks.join(''), '€\n');
    assert.ok(chunks.every((c) => !c.includes('\uFFFD')));
  });

  it('an aborted follower resolves without waiting for the build', async () => {
    const id = crypto.randomUUID();
    const controller = new AbortController();
    const started = Date.now();
    const following = followBuildLog(dataDir, id, { isFinished: async () => false, signal: controller.signal, onChunk: () => {}, pollMs: 10_000 });
    setTimeout(() => controller.abort(), 50);
    await following;
    // Not a speed check: without the abort the follower would sleep out its 10 s poll first.
    assert.ok(Date.now() - started < 9_000);
  });
});
