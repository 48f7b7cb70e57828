import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { realiseLocally } from '../../activities/realise/local';
import { readBuildMetrics, readBuildProducts, readBuildProductsOfOutputs } from '../../activities/realise/products';
import { instantiateFixtures } from '../support/nix-fixtures';

async function build(script: string, outputs?: string[]): Promise<Record<string, string>> {
  const attr = outputs ? `mkMulti "p" [ ${outputs.map((o) => `"${o}"`).join(' ')} ] ${JSON.stringify(script)}` : `mk "p" ${JSON.stringify(script)}`;
  const { p } = await instantiateFixtures(`p = ${attr.replace(/\$\{/g, '\\${')};`);
  const result = await realiseLocally(p, { timeoutSeconds: 60, maxSilentSeconds: 60, logLimitBytes: 0, onLog: () => undefined });
  assert.equal(result.status, 'succeeded', result.errorMessage ?? '');
  return result.outputs;
}

const sha256 = (text: string) => crypto.createHash('sha256').update(text).digest('hex');

describe('build products and metrics from a real build output', () => {
  it('parses hydra-build-products as Hydra does: quoting, entry points, hashes, and refusals', async () => {
    const { out } = await build(
      [
        '/bin/mkdir -p $out/nix-support $out/doc "$out/with space"',
        'echo release > $out/app.tar.gz',
        'echo "<html>" > $out/doc/index.html',
        'echo spaced > "$out/with space/file.txt"',
        '/bin/ln -s /etc $out/etc-link',
        '{',
        '  echo "file binary-dist $out/app.tar.gz"',
        '  echo "doc manual $out/doc index.html"',
        '  echo "file source-dist \\"$out/with space/file.txt\\""',
        '  echo "file outside /etc/passwd"',
        '  echo "file escape $out/../../etc/passwd"',
        '  echo "file through-link $out/etc-link/passwd"',
        '  echo "file missing $out/nope"',
        '  echo "not a valid line"',
        '  echo "nix-build out $out"',
        '} > $out/nix-support/hydra-build-products',
      ].join('\n'),
    );
    const products = await readBuildProducts(out);
    assert.deepEqual(products, [
      { type: 'file', subtype: 'binary-dist', name: 'app.tar.gz', path: `${out}/app.tar.gz`, sha256: sha256('release\n'), size: 8, isDirectory: false, contentType: 'application/gzip', defaultPath: null },
      { type: 'doc', subtype: 'manual', name: 'doc', path: `${out}/doc`, sha256: null, size: null, isDirectory: true, contentType: null, defaultPath: 'index.html' },
      { type: 'file', subtype: 'source-dist', name: 'file.txt', path: `${out}/with space/file.txt`, sha256: sha256('spaced\n'), size: 7, isDirectory: false, contentType: 'text/plain', defaultPath: null },
      { type: 'nix-build', subtype: 'out', name: '', path: out, sha256: null, size: null, isDirectory: true, contentType: null, defaultPath: null },
    ]);
  });

  it('without a products file, each directory output is a nix-build product', async () => {
    const outputs = await build('/bin/mkdir -p $out $dev; echo x > $dev/marker', ['out', 'dev']);
    const products = await readBuildProductsOfOutputs(outputs);
    assert.deepEqual(
      products.map((p) => [p.type, p.subtype, p.path, p.name]).sort(),
      [['nix-build', '', outputs.out, 'p'], ['nix-build', 'dev', outputs.dev, 'p-dev']],
    );
  });

  it('a products file in one output may name a file in another output of the same build', async () => {
    const outputs = await build('/bin/mkdir -p $out/nix-support $doc; echo m > $doc/manual.pdf; echo "doc manual $doc/manual.pdf" > $out/nix-support/hydra-build-products', ['out', 'doc']);
    assert.deepEqual(await readBuildProducts(outputs.out), [], 'alone, the other output is outside');
    const products = await readBuildProductsOfOutputs(outputs);
    assert.deepEqual(products.map((p) => [p.type, p.subtype, p.path, p.size]), [['doc', 'manual', `${outputs.doc}/manual.pdf`, 2]]);
  });

  it('parses hydra-metrics lines (name value [unit]) and skips malformed ones', async () => {
    const { out } = await build(
      [
        '/bin/mkdir -p $out/nix-support',
        '{',
        '  echo "closure.size 123456 bytes"',
        '  echo "tests.passed 42"',
        '  echo "time 1.5e2 s extra"',
        '  echo "bad/name 3"',
        '  echo "no-value"',
        '  echo "notanumber abc"',
        '  echo "odd-unit 7 <b>"',
        '  echo "tests.passed 43"',
        '} > $out/nix-support/hydra-metrics',
      ].join('\n'),
    );
    assert.deepEqual(await readBuildMetrics(out), [
      { name: 'closure.size', value: 123456, unit: 'bytes' },
      { name: 'tests.passed', value: 43, unit: null },
      { name: 'time', value: 150, unit: 's' },
      { name: 'odd-unit', value: 7, unit: null },
    ]);
  });

  it('an output without nix-support files has no products or metrics', async () => {
    const { out } = await build('echo plain > $out');
    assert.ok(fs.statSync(out).isFile());
    assert.deepEqual(await readBuildProducts(out), []);
    assert.deepEqual(await readBuildMetrics(out), []);
    assert.deepEqual(await readBuildProductsOfOutputs({ out }), []);
  });
});
