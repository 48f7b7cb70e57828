import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { BuilderConnectionPool, parseSshUri, pinnedHostKeyBlob, shellCommandFromArgs } from '../../activities/realise/ssh-connection';
import { pidsWithCommandLine, startSshBuilder, type SshBuilder } from '../support/sshd';

describe('SSH command quoting and URIs', () => {
  it('quotes every argument that is not a plain word, single quotes escaped', () => {
    assert.equal(shellCommandFromArgs(['nix-store', '--store', '/tmp/x', "it's", '', 'a b']), `nix-store --store /tmp/x 'it'\\''s' '' 'a b'`);
    assert.equal(shellCommandFromArgs(['FOO=bar']), `'FOO=bar'`, 'a first word that looks like an assignment stays a command');
    assert.throws(() => shellCommandFromArgs(['a\0b']), /NUL/);
    assert.throws(() => shellCommandFromArgs([]), /empty/);
  });

  it('parses ssh:// URIs with user and port, and bare user@host', () => {
    assert.deepEqual(parseSshUri('ssh://builder@10.0.0.5:2222'), { username: 'builder', host: '10.0.0.5', port: 2222 });
    assert.deepEqual(parseSshUri('ssh://example.org'), { username: 'root', host: 'example.org', port: 22 });
    assert.deepEqual(parseSshUri('nix@[::1]:22'), { username: 'nix', host: '::1', port: 22 });
    assert.throws(() => parseSshUri('http://x'), /unsupported/);
  });

  it('reads a pinned host key in known_hosts form, bare base64, or base64 of the known_hosts line', () => {
    const blob = 'AAAAC3NzaC1lZDI1NTE5AAAAIHnk7Kkm1pHf3RzJKqJ9q4QfXrJ8wQzZpY0Z1x2y3z4A';
    assert.equal(pinnedHostKeyBlob(`ssh-ed25519 ${blob} host`), blob);
    assert.equal(pinnedHostKeyBlob(blob), blob);
    assert.equal(pinnedHostKeyBlob(Buffer.from(`ssh-ed25519 ${blob}\n`).toString('base64')), blob);
  });
});

describe('BuilderConnection over a real sshd', () => {
  let builder: SshBuilder;
  const pool = new BuilderConnectionPool();
  before(async () => {
    builder = await startSshBuilder({ name: 'quoting' });
  });
  after(async () => {
    await pool.closeAll();
    await builder?.stop();
  });

  it('hostile arguments reach the remote command exactly as given', async () => {
    const conn = await pool.get(builder.spec);
    const hostile = ["it's", 'a b', '$HOME', '`id`', '$(id)', '"q"', '', ';rm -rf /nonexistent', '\\n', '*', 'line\nbreak', '~'];
    const result = await conn.execCollect(['printf', '[%s]\\n', ...hostile]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, hostile.map((a) => `[${a}]\n`).join(''));
  });

  it('streams stdin to the remote command and reports its exit code', async () => {
    const conn = await pool.get(builder.spec);
    const payload = Buffer.alloc(300_000, 'x');
    const counted = await conn.execCollect(['wc', '-c'], { stdin: Readable.from([payload]) });
    assert.equal(counted.stdout.trim(), '300000');
    assert.equal((await conn.execCollect(['sh', '-c', 'exit 42'])).code, 42);
  });

  it('runs more concurrent commands than sshd sessions allow one connection by queueing channels', async () => {
    const conn = await pool.get(builder.spec);
    const results = await Promise.all(Array.from({ length: 25 }, (_, i) => conn.execCollect(['echo', String(i)])));
    assert.deepEqual(results.map((r) => r.stdout.trim()), Array.from({ length: 25 }, (_, i) => String(i)));
  });

  it('aborting an exec closes its channel and leaves the connection usable', async () => {
    const conn = await pool.get(builder.spec);
    const controller = new AbortController();
    // A unique duration makes the remote process findable, so the test can end it (closing a channel does not).
    const duration = `30.${Date.now()}${process.pid}`;
    const running = conn.exec(['sleep', duration], { signal: controller.signal });
    setTimeout(() => controller.abort(), 200);
    const started = Date.now();
    try {
      const result = await running;
      assert.equal(result.code, null);
      // Not a speed check: the remote sleep lasts 30 s, and the abort must not wait for it.
      assert.ok(Date.now() - started < 25_000);
      assert.equal((await conn.execCollect(['echo', 'still'])).stdout, 'still\n');
    } finally {
      for (const pid of pidsWithCommandLine(`sleep\0${duration}`)) process.kill(pid, 'SIGKILL');
    }
  });
});
