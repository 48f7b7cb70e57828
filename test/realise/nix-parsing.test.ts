import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseDerivation, readDerivation } from '../../activities/nix/drv';
import { statusFromNixExit } from '../../activities/realise/realise-status';
import { instantiateFixtures } from '../support/nix-fixtures';

describe('reading Nix results', () => {
  it('maps nix-store exit codes: 100 failed, 101 timed out, other errors as the caller says', () => {
    assert.deepEqual(statusFromNixExit(0, '', 'failed'), { status: 'succeeded', errorMessage: null });
    assert.equal(statusFromNixExit(100, "error: builder for 'x' failed with exit code 2\n", 'failed').status, 'failed');
    assert.equal(statusFromNixExit(101, '', 'failed').status, 'timeout');
    assert.equal(statusFromNixExit(103, '', 'failed').status, 'timeout');
    assert.equal(statusFromNixExit(102, '', 'failed').status, 'failed');
    assert.deepEqual(statusFromNixExit(1, 'error: cannot open connection\n', 'builder_failure'), { status: 'builder_failure', errorMessage: 'cannot open connection' });
    assert.equal(statusFromNixExit(1, 'error: path is not valid\n', 'failed').status, 'failed');
  });

  it('parses a real .drv: outputs, input derivations, sources, system and env', async () => {
    const drvs = await instantiateFixtures(`dep = mkMulti "dep" [ "out" "lib" ] "echo > $out; echo > $lib";\n top = mk "top" "read x < \${dep.lib}; echo \\"q\\\\\\"uote\\" > $out";`);
    const top = await readDerivation(drvs.top);
    const dep = await readDerivation(drvs.dep);
    assert.deepEqual(Object.keys(dep.outputs), ['lib', 'out']);
    assert.deepEqual(top.inputDrvOutputs, { [drvs.dep]: ['lib'] });
    assert.deepEqual(top.inputDrvs, [drvs.dep]);
    assert.equal(top.builder, '/bin/sh');
    assert.equal(top.args[0], '-c');
    assert.match(top.args[1], /q\\"uote/);
    assert.equal(top.env.name, 'top');
    assert.ok(top.system.length > 0);
    assert.throws(() => parseDerivation('Derive(['), /malformed derivation/);
  });
});
