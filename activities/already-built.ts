import type { Db } from '../lib/db';
import { readDerivation } from './nix/drv';
import { closureSizes, locallyInvalidPaths } from './realise/closure';
import { readBuildMetrics, readBuildProductsOfOutputs, type BuildMetric } from './realise/products';
import { recordBuildsFoundBuilt } from './records/builds';

const knownPaths = (outputs: Record<string, string> | undefined): outputs is Record<string, string> =>
  outputs !== undefined && Object.keys(outputs).length > 0 && Object.values(outputs).every((p) => p !== '');

/**
 * Finds, among a batch of an evaluation's new builds, those whose outputs are all valid in the local
 * store already, and records them `succeeded` at once (outputs, products, metrics, closure size):
 * one validity check for the whole batch, instead of a plan and a step per build. A build's output
 * paths come from the evaluator (`outputs`) or, where it gave none, from one `.drv` read per derivation.
 * Their BuildWorkflow then finds them finished and closes. Answers the IDs recorded.
 */
export async function recordBuildsAlreadyBuilt(db: Db, builds: Array<{ id: string; drv_path: string; outputs?: Record<string, string> }>): Promise<Set<string>> {
  if (builds.length === 0) return new Set();
  const outputsOf = new Map<string, Record<string, string>>();
  for (const b of builds) if (knownPaths(b.outputs)) outputsOf.set(b.drv_path, b.outputs);
  const drvs = [...new Set(builds.map((b) => b.drv_path))].filter((drv) => !outputsOf.has(drv));
  await Promise.all(
    drvs.map(async (drv) => {
      // A .drv that cannot be read is left to the build's own plan, which reports it.
      const d = await readDerivation(drv).catch(() => null);
      if (knownPaths(d?.outputs)) outputsOf.set(drv, d.outputs);
    }),
  );
  // Only the outputs present in the store's folder are asked of Nix (locallyInvalidPaths): a fresh evaluation spawns nothing here.
  const invalid = await locallyInvalidPaths([...outputsOf.values()].flatMap((o) => Object.values(o)));
  const built = builds.filter((b) => {
    const outputs = outputsOf.get(b.drv_path);
    return outputs !== undefined && Object.values(outputs).every((p) => !invalid.has(p));
  });
  if (built.length === 0) return new Set();

  const sizes = await closureSizes(built.map((b) => Object.values(outputsOf.get(b.drv_path)!))).catch(() => built.map(() => null));
  const results = await Promise.all(
    built.map(async (b, i) => {
      const outputs = outputsOf.get(b.drv_path)!;
      const metrics: BuildMetric[] = [];
      for (const p of Object.values(outputs)) metrics.push(...(await readBuildMetrics(p).catch(() => [])));
      return {
        buildId: b.id,
        outputs,
        products: await readBuildProductsOfOutputs(outputs).catch(() => []),
        metrics,
        closureSize: sizes[i],
      };
    }),
  );
  const recorded = await db.transaction((trx) => recordBuildsFoundBuilt(trx, results));
  return new Set(recorded);
}
