import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { derivationsToBuild, locallyInvalidPaths } from '../../activities/realise/closure';
import { readDerivation } from '../../activities/nix/drv';
import { instantiateFixtures } from '../support/nix-fixtures';

function realise(drv: string): void {
  const r = spawnSync('nix-store', ['--realise', drv, '--option', 'substituters', ''], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

describe('planning from the store', () => {
  it('locallyInvalidPaths: paths never built are invalid, built ones (and their .drv) valid', async () => {
    const { built, unbuilt } = await instantiateFixtures(`built = mk "built" "echo a > $out";\n unbuilt = mk "unbuilt" "echo b > $out";`);
    realise(built);
    const builtOut = (await readDerivation(built)).outputs.out;
    const unbuiltOut = (await readDerivation(unbuilt)).outputs.out;
    const invalid = await locallyInvalidPaths([builtOut, unbuiltOut, built]);
    assert.deepEqual([...invalid], [unbuiltOut]);
  });

  it('derivationsToBuild lists the unbuilt derivations of the closure dependencies first, top last, and stops at built ones', async () => {
    // a ← b ← c ← top, and d ← top; a and b are built beforehand, so only c, d and top remain.
    const drvs = await instantiateFixtures(
      [
        `a = mk "a" "echo a > $out";`,
        `b = mk "b" "read x < \${a}; echo $x b > $out";`,
        `c = mk "c" "read x < \${b}; echo $x c > $out";`,
        `d = mk "d" "echo d > $out";`,
        `top = mk "top" "cat \${c} \${d} > $out";`,
      ].join('\n '),
    );
    realise(drvs.b);
    const { order, parsed } = await derivationsToBuild(drvs.top);
    assert.deepEqual([...order].sort(), [drvs.c, drvs.d, drvs.top].sort());
    assert.equal(order.at(-1), drvs.top);
    assert.ok(order.indexOf(drvs.c) < order.indexOf(drvs.top));
    // Every derivation of the closure was read (once), built ones included, so their outputs are known.
    assert.deepEqual([...parsed.keys()].sort(), [drvs.a, drvs.b, drvs.c, drvs.d, drvs.top].sort());
    assert.equal(parsed.get(drvs.top)!.inputDrvs.length, 2);
  });

  it('derivationsToBuild keeps the top derivation even when its outputs are valid', async () => {
    const { done } = await instantiateFixtures(`done = mk "done" "echo done > $out";`);
    realise(done);
    assert.deepEqual((await derivationsToBuild(done)).order, [done]);
  });
});
