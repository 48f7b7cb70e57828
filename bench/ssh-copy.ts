// Times N tiny remote builds (send inputs, build, fetch outputs) over one pooled SSH connection versus a
// new connection per build, against a real sshd builder with a chroot store on loopback.
// No goal of its own: it shows what pooling saves per remote step (issue 6's SSH goal, ≤ 2× nix-build, is
// `bench/dag.ts --ssh`).
// Run: node --import tsx bench/ssh-copy.ts [N]
import { realiseOnBuilder } from '../activities/realise/remote';
import { BuilderConnectionPool } from '../activities/realise/ssh-connection';
import type { RealiseOptions } from '../activities/realise/types';
import { instantiateFixtures, nonce } from '../test/support/nix-fixtures';
import { startSshBuilder } from '../test/support/sshd';
import { runBench } from './support';

const N = Number(process.argv[2] ?? 20);

async function tinyDerivations(count: number): Promise<string[]> {
  const n = nonce();
  const attrs = Array.from({ length: count }, (_, i) => `d${i} = mk "tiny-${i}" "echo ${i} > $out";`).join('\n');
  const drvs = await instantiateFixtures(attrs, n);
  return Array.from({ length: count }, (_, i) => drvs[`d${i}`]);
}

const options: RealiseOptions = { timeoutSeconds: 60, maxSilentSeconds: 60, logLimitBytes: 0, onLog: () => undefined };

async function run(label: string, drvs: string[], poolFor: () => BuilderConnectionPool, closeEach: boolean, spec: Parameters<typeof realiseOnBuilder>[1]): Promise<number> {
  const started = process.hrtime.bigint();
  let pool = poolFor();
  for (const drv of drvs) {
    const result = await realiseOnBuilder(pool, spec, drv, options);
    if (result.status !== 'succeeded') throw new Error(`${label}: ${drv} ${result.status}: ${result.errorMessage}`);
    if (closeEach) {
      await pool.closeAll();
      pool = poolFor();
    }
  }
  await pool.closeAll();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

async function main(): Promise<void> {
  const builder = await startSshBuilder({ name: 'bench' });
  try {
    // Warm the builder's store (database creation) so neither side pays for it.
    await run('warm-up', await tinyDerivations(1), () => new BuilderConnectionPool(), false, builder.spec);
    const pooledDrvs = await tinyDerivations(N);
    const freshDrvs = await tinyDerivations(N);
    const pooledMs = await run('pooled', pooledDrvs, () => new BuilderConnectionPool(), false, builder.spec);
    const freshMs = await run('fresh', freshDrvs, () => new BuilderConnectionPool(), true, builder.spec);
    console.log(`${N} tiny remote builds (send .drv, build, fetch output) against a loopback sshd builder:`);
    console.log(`  one pooled connection:       ${pooledMs.toFixed(0)} ms total, ${(pooledMs / N).toFixed(1)} ms per build`);
    console.log(`  new connection per build:    ${freshMs.toFixed(0)} ms total, ${(freshMs / N).toFixed(1)} ms per build`);
    console.log(`  ratio fresh / pooled:        ${(freshMs / pooledMs).toFixed(2)}x`);
  } finally {
    await builder.stop();
  }
}

runBench(main);
