import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LocalStoreServe } from '../../activities/nix/store-serve';
import { sriToNixHash } from '../../lib/binary-cache/nix-base32';
import { instantiateFixtures, nonce } from '../support/nix-fixtures';

const nix = (command: string, args: string[]) => execFileSync(command, ['--option', 'substituters', '', ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).trim();

describe('questions to the local store through one nix-store --serve process', () => {
  const store = new LocalStoreServe();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-serve-'));
  let dep: string;
  let top: string;

  /** A chroot store of this test's own, where paths can be deleted without touching the shared one. */
  const ownRoot = path.join(scratch, 'root');
  const ownStore = new LocalStoreServe(['--store', ownRoot]);
  const inOwnStore = (args: string[]) => nix('nix-store', ['--store', ownRoot, ...args]);

  before(async () => {
    const drvs = await instantiateFixtures(`dep = mk "serve-dep" "echo dep $nonce > $out"; top = mk "serve-top" "echo \${dep} > $out";`);
    top = nix('nix-store', ['--realise', drvs.top]);
    dep = nix('nix-store', ['--query', '--references', top]);
  });

  after(() => {
    store.close();
    ownStore.close();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('answers which paths are valid as nix-store --check-validity does; a malformed path is not valid and ends nothing', async () => {
    const missing = `/nix/store/${'0'.repeat(32)}-never-built-${nonce()}`;
    const valid = await store.validPaths([top, dep, missing, 'not a store path', '/nix/store/short']);
    assert.deepEqual([...valid].sort(), [dep, top].sort());
    assert.equal(nix('nix-store', ['--check-validity', '--print-invalid', top, dep, missing]), missing);
    assert.deepEqual([...(await store.validPaths([top]))], [top], 'the same process answers the next question');
  });

  it('sees a path added or deleted after it started: no answer comes from a cache', async () => {
    const file = path.join(scratch, 'comes-and-goes');
    fs.writeFileSync(file, `comes and goes ${nonce()}\n`);
    const added = inOwnStore(['--add', file]);
    // Path infos and closures fill Nix's in-memory cache of what it knows of each path: a long-lived
    // process must not answer from it.
    assert.deepEqual([...(await ownStore.validPaths([added]))], [added]);
    assert.deepEqual([...(await ownStore.pathInfos([added])).keys()], [added]);
    assert.deepEqual(await ownStore.closure([added]), [added]);
    assert.deepEqual([...(await store.validPaths([added]))], [], 'the default store is another store');
    inOwnStore(['--delete', added]);
    assert.deepEqual([...(await ownStore.validPaths([added]))], [], 'deleted: not valid any more');
    assert.deepEqual([...(await ownStore.pathInfos([added])).keys()], [], 'deleted: not described any more');
    assert.equal(inOwnStore(['--add', file]), added, 'the same contents give the same path');
    assert.deepEqual([...(await ownStore.validPaths([added]))], [added], 'added again: valid again');
    assert.deepEqual([...(await ownStore.pathInfos([added])).keys()], [added], 'added again: described again');
  });

  it('describes paths as nix path-info does, NAR hashes in the sha256:<base32> form', async () => {
    const infos = await store.pathInfos([top, dep, `/nix/store/${'0'.repeat(32)}-missing`]);
    assert.deepEqual([...infos.keys()].sort(), [dep, top].sort(), 'an invalid path is left out');
    const expected = JSON.parse(nix('nix', ['--extra-experimental-features', 'nix-command', 'path-info', '--json', top, dep])) as Array<{ path: string; narHash: string; narSize: number; references: string[]; deriver?: string }>;
    for (const e of expected) {
      const info = infos.get(e.path)!;
      assert.equal(info.narHash, sriToNixHash(e.narHash));
      assert.equal(info.narSize, e.narSize);
      assert.deepEqual([...info.references].sort(), [...e.references].sort());
      assert.equal(info.deriver, e.deriver ?? null);
    }
    assert.deepEqual(infos.get(top)!.references, [dep]);
  });

  it('answers the closure of paths as nix-store --query --requisites does', async () => {
    const closure = await store.closure([top]);
    assert.deepEqual([...closure].sort(), nix('nix-store', ['--query', '--requisites', top]).split('\n').sort());
  });

  it('starts a new process for the next question when one fails, and answers concurrent questions each its own', async () => {
    await assert.rejects(store.closure([`/nix/store/${'0'.repeat(32)}-not-there`]), /nix-store --serve: .*is not valid/);
    const answers = await Promise.all([store.validPaths([top]), store.closure([dep]), store.validPaths([dep]), store.pathInfos([top])]);
    assert.deepEqual([...answers[0]], [top]);
    assert.deepEqual(answers[1], [dep]);
    assert.deepEqual([...answers[2]], [dep]);
    assert.equal(answers[3].get(top)!.references[0], dep);
  });
});
