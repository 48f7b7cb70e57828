import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dependenciesFirst } from '../../activities/nix/dependencies-first';

describe('dependenciesFirst: the order in which fetched paths are imported', () => {
  const p = (name: string) => `/nix/store/${name.padEnd(32, '0')}-${name}`;
  const infos = new Map([
    [p('app'), { references: [p('app'), p('lib'), p('glibc')] }],
    [p('lib'), { references: [p('glibc'), p('outside')] }],
    [p('glibc'), { references: [p('glibc')] }],
    [p('doc'), { references: [] }],
  ]);

  it('puts every path after those of its references that travel with it, whatever the order asked', () => {
    for (const asked of [[p('app'), p('lib'), p('glibc'), p('doc')], [p('doc'), p('glibc'), p('app'), p('lib')], [p('lib'), p('app'), p('doc'), p('glibc')]]) {
      const order = dependenciesFirst(asked, infos);
      assert.deepEqual([...order].sort(), [...asked].sort(), 'each path once');
      const at = (x: string) => order.indexOf(x);
      assert.ok(at(p('glibc')) < at(p('lib')) && at(p('lib')) < at(p('app')), order.join(' '));
    }
  });

  it('leaves out references that are not among the paths (valid here already), and a path without infos keeps its place', () => {
    assert.deepEqual(dependenciesFirst([p('lib'), p('unknown')], infos), [p('lib'), p('unknown')]);
  });
});
