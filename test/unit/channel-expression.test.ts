import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { channelExpression, derivationName, jobTree, nixString } from '../../api/channel-expression';
import type { ChannelJob } from '../../api/queries/channels';
import { fakeStorePath } from '../support/seed';

const job = (job_name: string, outputs: Record<string, string>, fields: Partial<ChannelJob> = {}): ChannelJob => ({
  job_name,
  drv_path: fakeStorePath(`${job_name.replace(/\./g, '-')}-1.0.drv`),
  system: 'x86_64-linux',
  meta_description: null,
  meta_license: null,
  meta_homepage: null,
  outputs,
  ...fields,
});

/** Evaluates `expr` with `channel` bound to the generated expression, as JSON (nix-instantiate --eval --strict). */
function evalWithChannel(source: string, expr: string): unknown {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-channel-expr-'));
  try {
    fs.writeFileSync(path.join(dir, 'default.nix'), source);
    // --eval runs read-only: builtins.storePath does not need the (fake) paths to exist.
    const out = execFileSync('nix-instantiate', ['--eval', '--strict', '--json', '--option', 'substituters', '', '-E', `let channel = import ${dir} {}; in ${expr}`], { encoding: 'utf8' });
    return JSON.parse(out);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe("a channel's default.nix", () => {
  const hello = job('hello', { out: fakeStorePath('hello-1.0') }, { meta_description: 'says "hello" ${not interpolated}' });
  const multi = job('multi', { out: fakeStorePath('multi-1.0'), doc: fakeStorePath('multi-1.0-doc') });
  const nested = job('tools.x', { out: fakeStorePath('tools-x-1.0') });
  const source = { project: 'demo', jobset: 'main', evaluationId: '00000000-0000-0000-0000-000000000001', gitRevision: 'abc123' };
  const text = channelExpression(source, [hello, multi, nested]);

  it('gives each job its built output as outPath, its derivation name, system and meta', () => {
    // (the JSON of an attribute set with an outPath is that path alone)
    const value = evalWithChannel(text, '{ inherit (channel.hello) name system meta; path = channel.hello.outPath; kind = channel.hello.type; }') as Record<string, unknown>;
    assert.deepEqual(value, {
      path: hello.outputs.out,
      name: 'hello-1.0',
      system: 'x86_64-linux',
      kind: 'derivation',
      meta: { description: 'says "hello" ${not interpolated}' },
    });
  });

  it('a multi-output job is its out output, with every output reachable by name', () => {
    const value = evalWithChannel(text, '{ main = channel.multi.outPath; doc = channel.multi.doc.outPath; outputs = channel.multi.outputs; names = map (o: o.outputName) channel.multi.all; }');
    assert.deepEqual(value, { main: multi.outputs.out, doc: multi.outputs.doc, outputs: ['doc', 'out'], names: ['doc', 'out'] });
  });

  it('dotted job names nest, with recurseForDerivations so nix-env -qa finds them', () => {
    const value = evalWithChannel(text, '{ x = channel.tools.x.outPath; recurse = channel.tools.recurseForDerivations; }');
    assert.deepEqual(value, { x: nested.outputs.out, recurse: true });
  });

  it('nix-env -qa lists every job by its derivation name', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-channel-expr-'));
    try {
      fs.writeFileSync(path.join(dir, 'default.nix'), text);
      const out = execFileSync('nix-env', ['-qaP', '-f', dir, '--option', 'substituters', ''], { encoding: 'utf8' });
      const listed = out.trim().split('\n').map((l) => l.split(/\s+/));
      assert.deepEqual(listed, [['hello', 'hello-1.0'], ['multi', 'multi-1.0'], ['tools.x', 'tools-x-1.0']]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('depends only on the evaluation: the same jobs in any order give the same text', () => {
    assert.equal(channelExpression(source, [nested, multi, hello]), text);
  });

  it('a job whose name is a prefix of another keeps the longer one as a quoted flat attribute', () => {
    const tree = jobTree([job('a', { out: fakeStorePath('a') }), job('a.b', { out: fakeStorePath('a-b') }), job('c.d.e', { out: fakeStorePath('e') })]);
    assert.deepEqual([...tree.keys()].sort(), ['a', 'a.b', 'c']);
    const c = tree.get('c');
    assert.ok(c instanceof Map && c.get('d') instanceof Map);
  });

  it('escapes everything a string could break out with', () => {
    assert.equal(nixString('a"b\\c${d}\ne'), '"a\\"b\\\\c\\${d}\\ne"');
    assert.equal(derivationName('/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello-2.1.drv'), 'hello-2.1');
  });
});
