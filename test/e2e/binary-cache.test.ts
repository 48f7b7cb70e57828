import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { makeGitRepo, type GitFixtureRepo } from '../support/git-fixture';
import { createJobset, eventually, nonce, trigger, waitForBuilds, type CreatedJobset } from '../support/pipeline';
import { startApi } from '../../api/server';
import { collectGarbage } from '../../activities/cache/collect-garbage';
import { NixSigningKey } from '../../lib/binary-cache/nix-signing-key';

const execFileAsync = promisify(execFile);
const CACHE_FIXTURE = path.resolve(__dirname, '..', 'fixtures', 'cache-jobset');

interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command with an argument array; resolves with its exit code instead of throwing. */
async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<CommandResult> {
  try {
    const { stdout, stderr } = await execFileAsync(cmd, args, { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

function parseNarInfo(text: string): Record<string, string[]> {
  const fields: Record<string, string[]> = {};
  for (const line of text.trim().split('\n')) {
    const i = line.indexOf(': ');
    (fields[line.slice(0, i)] ??= []).push(line.slice(i + 2));
  }
  return fields;
}

const hashPart = (storePath: string) => path.basename(storePath).slice(0, 32);

describe('the binary cache serves what Ringmaster built, and a real Nix 2.8 client substitutes from it', () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let jobset: CreatedJobset;
  let builds: Record<string, Record<string, any>>;
  let publicKey: string;
  let cacheUrl: string;
  /** A store of this test's own: the garbage collector runs on it, never on the shared /nix/store. */
  let gcStore: string;
  let gcRootsDir: string;
  const scratchDirs: string[] = [];
  const greeting = `cache-${nonce()}`;

  const out = (job: string) => builds[job].outputs.out as string;
  /** A fresh temporary folder, removed after the tests. */
  const tempDir = (prefix: string) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    scratchDirs.push(dir);
    return dir;
  };
  /** Nix client options: our cache as the only substituter, a fresh narinfo cache (XDG_CACHE_HOME). */
  const clientEnv = () => ({ XDG_CACHE_HOME: tempDir('ringmaster-xdg-') });

  before(async () => {
    gcStore = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-gc-store-'));
    gcRootsDir = path.join(gcStore, 'nix', 'var', 'nix', 'gcroots', 'ringmaster');
    stack = await startTestStack({ worker: true, env: { RINGMASTER_GC_ROOTS_DIR: gcRootsDir } });
    cacheUrl = `${stack.url}/nix-cache`;
    repo = await makeGitRepo(CACHE_FIXTURE);
    jobset = await createJobset(stack, repo.url, { inputs: { greeting } });
    const evaluation = await trigger(stack, jobset.jobsetId);
    builds = await waitForBuilds(stack, evaluation.id);
    for (const job of ['lib', 'app', 'scratch']) assert.equal(builds[job]?.status, 'succeeded', `${job}: ${builds[job]?.error_message}`);
    // Publication runs after each build has finished, in batches (ServeBuildOutputsWorkflow): a build's
    // row leaves build_outputs_to_serve once its closure size, GC roots and cache entries are written.
    const ids = ['lib', 'app', 'scratch'].map((job) => builds[job].id);
    await eventually('the builds\' outputs served', async () => ((await stack.db('build_outputs_to_serve').whereIn('build_id', ids)).length === 0 ? true : undefined), 60_000);
    const system = await stack.request('GET', '/api/v1/admin/system', { key: stack.adminKey });
    assert.equal(system.status, 200, system.text);
    publicKey = system.body.binary_cache.public_key;
  });
  after(async () => {
    await stack?.stop();
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
    for (const dir of [gcStore, ...scratchDirs]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the admin system view shows the public key, in Nix\'s name:base64 form, of a key generated into the data folder', async () => {
    assert.match(publicKey, /^[A-Za-z0-9.-]+-1:[A-Za-z0-9+/]{43}=$/);
    const secretFile = path.join(stack.dataDir, 'binary-cache', 'secret-key');
    assert.equal(fs.statSync(secretFile).mode & 0o777, 0o600);
    assert.equal(NixSigningKey.fromSecretKeyText(fs.readFileSync(secretFile, 'utf8')).publicKey, publicKey);
    assert.equal(fs.readFileSync(path.join(stack.dataDir, 'binary-cache', 'public-key'), 'utf8').trim(), publicKey);
  });

  it('a realised build\'s closure size is recorded once its outputs are served: app\'s closure holds lib\'s', async () => {
    const rows = await stack.db('builds').whereIn('id', [builds.lib.id, builds.app.id]).select('id', 'closure_size');
    const size = (id: string) => Number(rows.find((r) => r.id === id)?.closure_size);
    assert.ok(size(builds.lib.id) > 0, `lib's closure size: ${size(builds.lib.id)}`);
    assert.ok(size(builds.app.id) > size(builds.lib.id), `app's closure size ${size(builds.app.id)} holds lib's ${size(builds.lib.id)}`);
  });

  it('nix-cache-info answers GET and HEAD with the store dir and the cache priority', async () => {
    const res = await fetch(`${cacheUrl}/nix-cache-info`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/x-nix-cache-info/);
    assert.equal(await res.text(), 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n');
    const head = await fetch(`${cacheUrl}/nix-cache-info`, { method: 'HEAD' });
    assert.equal(head.status, 200);
  });

  it('a succeeded build\'s output has a narinfo with the real fields, its references published too', async () => {
    const res = await fetch(`${cacheUrl}/${hashPart(out('app'))}.narinfo`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/x-nix-narinfo/);
    const info = parseNarInfo(await res.text());
    const [pathInfo] = JSON.parse((await run('nix', ['--extra-experimental-features', 'nix-command', 'path-info', '--json', out('app')])).stdout);
    const narHashBase32 = (await run('nix', ['--extra-experimental-features', 'nix-command', 'hash', 'to-base32', pathInfo.narHash])).stdout.trim();
    assert.deepEqual(info.StorePath, [out('app')]);
    assert.match(info.URL[0], /^nar\/[0-9a-df-np-sv-z]{52}\.nar\.xz$/);
    assert.deepEqual(info.Compression, ['xz']);
    assert.match(info.FileHash[0], /^sha256:[0-9a-df-np-sv-z]{52}$/);
    assert.ok(Number(info.FileSize[0]) > 0);
    assert.deepEqual(info.NarHash, [`sha256:${narHashBase32}`]);
    assert.deepEqual(info.NarSize, [String(pathInfo.narSize)]);
    assert.deepEqual(info.References, [path.basename(out('lib'))]);
    assert.deepEqual(info.Deriver, [path.basename(builds.app.drv_path)]);
    assert.equal(info.Sig.length, 1);
    assert.ok(info.Sig[0].startsWith(`${publicKey.split(':')[0]}:`));
    // The closure: lib has its own narinfo, though no one asked the cache for it.
    const lib = await fetch(`${cacheUrl}/${hashPart(out('lib'))}.narinfo`, { method: 'HEAD' });
    assert.equal(lib.status, 200);
  });

  it('Nix 2.8 substitutes the output with its closure into an empty chroot store (nix-store -r)', async () => {
    const store = tempDir('ringmaster-client-store-');
    const r = await run('nix-store', ['--store', store, '-r', out('app'), '--option', 'substituters', cacheUrl, '--option', 'trusted-public-keys', publicKey, '--max-jobs', '0'], clientEnv());
    assert.equal(r.code, 0, r.stderr);
    const valid = await run('nix-store', ['--store', store, '--check-validity', '--print-invalid', out('app'), out('lib')]);
    assert.equal(valid.code, 0, valid.stderr);
    assert.equal(valid.stdout, '');
    const real = (p: string) => path.join(store, p);
    assert.equal(fs.readFileSync(real(`${out('app')}/greeting`), 'utf8'), `${greeting} from lib\n`);
    assert.equal(fs.readlinkSync(real(`${out('lib')}/share/link`)), 'greeting');
    assert.equal(fs.statSync(real(`${out('lib')}/bin/hello`)).mode & 0o111, 0o111);
  });

  it('nix copy --from the cache URL copies the closure too', async () => {
    const store = tempDir('ringmaster-copy-store-');
    const r = await run('nix', ['--extra-experimental-features', 'nix-command', 'copy', '--from', cacheUrl, '--to', store, out('app'), '--option', 'trusted-public-keys', publicKey], clientEnv());
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(path.join(store, out('app'), 'lib-path'), 'utf8'), `${out('lib')}\n`);
  });

  it('with a wrong public key the client refuses to substitute', async () => {
    const store = tempDir('ringmaster-refusing-store-');
    const wrongKey = NixSigningKey.generate(publicKey.split(':')[0]).publicKey;
    const r = await run('nix-store', ['--store', store, '-r', out('scratch'), '--option', 'substituters', cacheUrl, '--option', 'trusted-public-keys', wrongKey, '--max-jobs', '0'], clientEnv());
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /is not signed by any of the keys in 'trusted-public-keys'/);
    const valid = await run('nix-store', ['--store', store, '--check-validity', out('scratch')]);
    assert.notEqual(valid.code, 0, 'the path must not have become valid');
  });

  it('an unknown hash is a 404 for GET and HEAD, a malformed one a 400 naming the field, never a 500', async () => {
    const unknown = '0'.repeat(32);
    for (const method of ['GET', 'HEAD']) {
      assert.equal((await fetch(`${cacheUrl}/${unknown}.narinfo`, { method })).status, 404);
      assert.equal((await fetch(`${cacheUrl}/nar/${'1'.repeat(52)}.nar.xz`, { method })).status, 404);
    }
    const bad = await stack.request('GET', '/nix-cache/not-a-hash!.narinfo');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error_code, 'VALIDATION_ERROR');
    assert.equal(bad.body.details[0].field, 'params.hash');
    assert.equal((await stack.request('GET', '/nix-cache/nar/..%2F..%2Fsecret-key')).status, 404);
    assert.equal((await stack.request('GET', '/nix-cache/nar/whatever.nar')).status, 404);
  });

  it('a NAR is served from its stored file with HEAD and byte ranges', async () => {
    const info = parseNarInfo(await (await fetch(`${cacheUrl}/${hashPart(out('lib'))}.narinfo`)).text());
    const url = `${cacheUrl}/${info.URL[0]}`;
    const size = Number(info.FileSize[0]);
    const full = Buffer.from(await (await fetch(url)).arrayBuffer());
    assert.equal(full.length, size);
    const xz = await new Promise<Buffer>((resolve, reject) => {
      const child = execFile('xz', ['--decompress', '--stdout'], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
      child.stdin!.end(full);
    });
    const dumped = await new Promise<Buffer>((resolve, reject) => execFile('nix-store', ['--dump', out('lib')], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => (err ? reject(err) : resolve(stdout))));
    assert.ok(xz.equals(dumped), 'the file decompresses to the NAR of the store path');

    const head = await fetch(url, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(size));
    assert.equal(head.headers.get('accept-ranges'), 'bytes');

    const part = await fetch(url, { headers: { range: 'bytes=10-19' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 10-19/${size}`);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(full.subarray(10, 20)));
    const tail = await fetch(url, { headers: { range: 'bytes=-7' } });
    assert.equal(tail.status, 206);
    assert.ok(Buffer.from(await tail.arrayBuffer()).equals(full.subarray(size - 7)));
    const outside = await fetch(url, { headers: { range: `bytes=${size + 10}-` } });
    assert.equal(outside.status, 416);
    assert.equal(outside.headers.get('content-range'), `bytes */${size}`);
  });

  it('narinfos and NAR URLs stay the same after a restart of the API', async () => {
    const before = await (await fetch(`${cacheUrl}/${hashPart(out('app'))}.narinfo`)).text();
    const again = await startApi({ db: stack.db, config: stack.config, temporal: stack.temporal, startedAt: new Date(), version: 'test' }, 0, '127.0.0.1');
    try {
      const after = await (await fetch(`${again.url}/nix-cache/${hashPart(out('app'))}.narinfo`)).text();
      assert.equal(after, before);
      const nar = await fetch(`${again.url}/nix-cache/${parseNarInfo(after).URL[0]}`);
      assert.equal(nar.status, 200);
      assert.equal(Number((await nar.arrayBuffer()).byteLength), Number(parseNarInfo(after).FileSize[0]));
    } finally {
      await again.close();
    }
  });

  it('with reads requiring a key, a Nix client substitutes with the key as its netrc password, and nothing without it', async () => {
    const locked = await startApi({ db: stack.db, config: { ...stack.config, requireAuthForReads: true }, temporal: stack.temporal, startedAt: new Date(), version: 'test' }, 0, '127.0.0.1');
    try {
      const lockedCache = `${locked.url}/nix-cache`;
      assert.equal((await fetch(`${lockedCache}/${hashPart(out('app'))}.narinfo`)).status, 401);
      const reader = await stack.keyFor('read-only');
      const netrc = path.join(tempDir('ringmaster-netrc-'), 'netrc');
      fs.writeFileSync(netrc, `machine 127.0.0.1 login nix password ${reader}\n`, { mode: 0o600 });
      const refused = await run('nix-store', ['--store', tempDir('ringmaster-locked-store-'), '-r', out('app'), '--option', 'substituters', lockedCache, '--option', 'trusted-public-keys', publicKey, '--max-jobs', '0'], clientEnv());
      assert.notEqual(refused.code, 0);
      const store = tempDir('ringmaster-netrc-store-');
      const r = await run('nix-store', ['--store', store, '-r', out('app'), '--option', 'substituters', lockedCache, '--option', 'trusted-public-keys', publicKey, '--option', 'netrc-file', netrc, '--max-jobs', '0'], clientEnv());
      assert.equal(r.code, 0, r.stderr);
      assert.equal(fs.readFileSync(path.join(store, out('app'), 'greeting'), 'utf8'), `${greeting} from lib\n`);
      // Basic credentials never authorize a mutation.
      const basic = `Basic ${Buffer.from(`nix:${stack.adminKey}`).toString('base64')}`;
      const mutation = await fetch(`${locked.url}/api/v1/builds/${builds.app.id}/keep/1`, { method: 'PUT', headers: { authorization: basic } });
      assert.equal(mutation.status, 401);
    } finally {
      await locked.close();
    }
  });

  it('kept builds and each jobset\'s latest keep_nr evaluations are GC roots; the garbage collector spares them, collects the rest, and the cache then answers 404', async () => {
    // keep_nr 3 (the default): every output of the one evaluation is a root.
    const rootNames = () => fs.readdirSync(gcRootsDir).sort();
    assert.deepEqual(rootNames(), ['app', 'lib', 'scratch'].map((j) => path.basename(out(j))).sort());
    for (const name of rootNames()) assert.equal(fs.readlinkSync(path.join(gcRootsDir, name)), `/nix/store/${name}`);

    // keep_nr 0, then keep app: only app is rooted.
    const update = await stack.request('PUT', `/api/v1/projects/${jobset.projectId}/jobsets/${jobset.jobsetId}`, { key: stack.adminKey, body: { keep_nr: 0 } });
    assert.equal(update.status, 200, update.text);
    const keep = await stack.request('PUT', `/api/v1/builds/${builds.app.id}/keep/1`, { key: stack.adminKey });
    assert.equal(keep.status, 200, keep.text);
    assert.deepEqual(rootNames(), [path.basename(out('app'))]);

    const pinned = await stack.request('GET', '/api/v1/admin/pinned-build-products', { key: stack.adminKey });
    assert.equal(pinned.status, 200, pinned.text);
    assert.equal(pinned.body.total, 1);
    assert.equal(pinned.body.items[0].build_id, builds.app.id);
    assert.equal(pinned.body.items[0].path, out('app'));
    assert.equal(pinned.body.items[0].gc_root_path, path.join(gcRootsDir, path.basename(out('app'))));

    // The test's own store holds both closures; the collector runs there.
    const copied = await run('nix', ['--extra-experimental-features', 'nix-command', 'copy', '--no-check-sigs', '--to', gcStore, out('app'), out('scratch')]);
    assert.equal(copied.code, 0, copied.stderr);
    const gc = await collectGarbage({ db: stack.db, dataDir: stack.dataDir, gcRootsDir }, { store: gcStore });
    assert.deepEqual(gc.pruned, [out('scratch')]);
    const invalid = await run('nix-store', ['--store', gcStore, '--check-validity', '--print-invalid', out('app'), out('lib'), out('scratch')]);
    assert.equal(invalid.stdout.trim(), out('scratch'), 'app and lib remain; scratch is gone');

    for (const method of ['GET', 'HEAD']) assert.equal((await fetch(`${cacheUrl}/${hashPart(out('scratch'))}.narinfo`, { method })).status, 404);
    assert.equal((await fetch(`${cacheUrl}/${hashPart(out('app'))}.narinfo`)).status, 200);

    // Unpinned, app goes at the next collection, and leaves the cache.
    const appNarUrl = parseNarInfo(await (await fetch(`${cacheUrl}/${hashPart(out('app'))}.narinfo`)).text()).URL[0];
    const unpin = await stack.request('POST', `/api/v1/admin/pinned-builds/${builds.app.id}/unpin`, { key: stack.adminKey });
    assert.equal(unpin.status, 200, unpin.text);
    assert.equal(unpin.body.keep, false);
    assert.deepEqual(rootNames(), []);
    assert.equal((await stack.request('GET', '/api/v1/admin/pinned-build-products', { key: stack.adminKey })).body.total, 0);
    // This time through the command an operator runs.
    const cli = await run(process.execPath, [path.resolve(__dirname, '..', '..', 'bin', 'ringmaster.js'), 'gc', '--store', gcStore], {
      DATABASE_URL: stack.databaseUrl,
      RINGMASTER_DATA_DIR: stack.dataDir,
      RINGMASTER_GC_ROOTS_DIR: gcRootsDir,
    });
    assert.equal(cli.code, 0, cli.stderr);
    // app goes, and lib with it: nothing else refers to it.
    assert.match(cli.stdout, /0 GC roots in .*; 2 collected paths dropped from the binary cache/);
    const gone = await run('nix-store', ['--store', gcStore, '--check-validity', '--print-invalid', out('app'), out('lib')]);
    assert.deepEqual(gone.stdout.trim().split('\n').sort(), [out('app'), out('lib')].sort());
    assert.equal((await fetch(`${cacheUrl}/${hashPart(out('app'))}.narinfo`)).status, 404);
    assert.equal((await fetch(`${cacheUrl}/${appNarUrl}`)).status, 404);
  });

  it('unpinning an unknown build is a 404, and the pinned routes need the admin role', async () => {
    assert.equal((await stack.request('POST', '/api/v1/admin/pinned-builds/00000000-0000-4000-8000-000000000000/unpin', { key: stack.adminKey })).status, 404);
    assert.equal((await stack.request('POST', '/api/v1/admin/pinned-builds/not-a-uuid/unpin', { key: stack.adminKey })).status, 400);
    const reader = await stack.keyFor('read-only');
    assert.equal((await stack.request('GET', '/api/v1/admin/pinned-build-products', { key: reader })).status, 403);
    assert.equal((await stack.request('GET', '/api/v1/admin/pinned-build-products')).status, 401);
  });
});
