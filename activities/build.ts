import fs from 'node:fs';
import type { ActivityDeps } from './index';
import {
  addWaiterSignal,
  derivationWorkflowId,
  FINISHED_BUILD_STATUSES,
  type BuildStatus,
  type DerivationInput,
  type DerivationResult,
} from '../workflows/shared';
import type { StepPlan } from '../workflows/build-outcome';
import { readDerivation } from './nix/drv';
import { closureSize, localClosure, locallyInvalidPaths } from './build/closure';
import { readBuildMetrics, readBuildProductsOfOutputs, type BuildMetric, type BuildProduct } from './build/products';
import { closeUnfinishedSteps, insertPlannedSteps } from './records/steps';
import { BuildLogWriter, compressedLogPath, liveLogPath } from '../lib/build-log';
import { RingmasterStatus, RingmasterSystem } from '../lib/search-attributes';
import { serveBuildOutputs } from './cache/serve-build-outputs';

export interface PlannedStep extends StepPlan {
  system: string;
  requiredFeatures: string[];
  logBuildId: string;
}

export type BuildPlan =
  | { kind: 'finished'; status: BuildStatus; priority: number }
  | {
      kind: 'plan';
      steps: PlannedStep[];
      priority: number;
      jobsetId: string;
      shares: number;
      timeoutSeconds: number;
      maxSilentSeconds: number;
      derivationWorkflowIds: Record<string, string>;
    };

export function createBuildActivities(deps: ActivityDeps) {
  const { db } = deps;

  return {
    /**
     * Loads the build and plans its steps: every derivation in its closure whose outputs are not valid
     * yet (dependencies first), plus an aggregate's constituents. Marks the build running.
     */
    async startBuild(input: { buildId: string; restart: boolean }): Promise<BuildPlan> {
      const build = await db('builds as b')
        .join('jobsets as j', 'j.id', 'b.jobset_id')
        .where('b.id', input.buildId)
        .first('b.*', 'j.scheduling_shares', 'j.build_timeout', 'j.max_silent');
      if (!build) return { kind: 'finished', status: 'aborted', priority: 0 };
      if (input.restart) {
        await db('cached_failures').where({ drv_path: build.drv_path }).delete();
      } else if ((FINISHED_BUILD_STATUSES as readonly string[]).includes(build.status)) {
        return { kind: 'finished', status: build.status as BuildStatus, priority: build.priority };
      }

      // The derivations of the closure whose outputs are missing, in the order nix-store lists them.
      const drvs = (await localClosure([build.drv_path])).filter((p) => p.endsWith('.drv'));
      if (!drvs.includes(build.drv_path)) throw new Error(`the closure of ${build.drv_path} does not list it: is it in the store?`);
      const parsed = new Map<string, Awaited<ReturnType<typeof readDerivation>>>();
      for (const drv of drvs) parsed.set(drv, await readDerivation(drv));
      const allOutputs = drvs.flatMap((d) => Object.values(parsed.get(d)!.outputs));
      const invalid = await locallyInvalidPaths(allOutputs);
      const needed = drvs.filter((d) => d === build.drv_path || Object.values(parsed.get(d)!.outputs).some((o) => invalid.has(o)));

      // An aggregate waits for its constituents' builds.
      const constituents: Array<{ drv_path: string; job_name: string }> = build.is_aggregate
        ? await db('aggregate_constituents as a').join('builds as c', 'c.id', 'a.constituent_build_id').where('a.aggregate_build_id', build.id).select('c.drv_path', 'c.job_name')
        : [];
      for (const c of constituents) {
        if (!needed.includes(c.drv_path)) {
          needed.unshift(c.drv_path);
          if (!parsed.has(c.drv_path)) parsed.set(c.drv_path, await readDerivation(c.drv_path));
        }
      }

      // Another build of the same evaluation that *is* a step's derivation gets that step's log.
      const owners: Array<{ id: string; drv_path: string; job_name: string }> = await db('builds')
        .where({ evaluation_id: build.evaluation_id })
        .whereIn('drv_path', needed)
        .select('id', 'drv_path', 'job_name');
      const ownerOf = new Map(owners.map((o) => [o.drv_path, o]));
      const neededSet = new Set(needed);
      const steps: PlannedStep[] = needed.map((drv) => {
        const d = parsed.get(drv)!;
        const isTop = drv === build.drv_path;
        const inputs = d.inputDrvs.filter((i) => neededSet.has(i) && i !== drv);
        if (isTop) for (const c of constituents) if (c.drv_path !== drv && !inputs.includes(c.drv_path)) inputs.push(c.drv_path);
        const owner = ownerOf.get(drv);
        return {
          drvPath: drv,
          isTop,
          inputs,
          jobName: owner?.job_name ?? null,
          system: d.system,
          requiredFeatures: d.requiredSystemFeatures,
          logBuildId: isTop ? build.id : owner?.id ?? build.id,
        };
      });
      // Top last, dependencies in closure order.
      steps.sort((a, b) => (a.isTop === b.isTop ? 0 : a.isTop ? 1 : -1));

      await db.transaction(async (trx) => {
        await trx('builds').where({ id: build.id }).update({
          status: 'running',
          started_at: trx.fn.now(),
          completed_at: null,
          error_message: null,
          updated_at: trx.fn.now(),
        });
        await insertPlannedSteps(trx as never, build.id, steps.map((s) => s.drvPath));
      });
      if (input.restart) {
        for (const p of [liveLogPath(deps.config.dataDir, build.id), compressedLogPath(deps.config.dataDir, build.id)]) fs.rmSync(p, { force: true });
      }
      return {
        kind: 'plan',
        steps,
        priority: build.priority,
        jobsetId: build.jobset_id,
        shares: build.scheduling_shares,
        timeoutSeconds: build.meta_timeout ?? build.build_timeout,
        maxSilentSeconds: build.meta_max_silent ?? build.max_silent,
        derivationWorkflowIds: Object.fromEntries(steps.map((s) => [s.drvPath, derivationWorkflowId(deps.taskQueue, s.drvPath)])),
      };
    },

    /** Registers the build as a waiter of the derivation's shared workflow, starting it if needed. */
    async attachToDerivation(input: Omit<DerivationInput, 'priority'> & { priority: number; waiterWorkflowId: string }): Promise<void> {
      const { waiterWorkflowId, ...derivation } = input;
      await deps.client.workflow.signalWithStart('DerivationWorkflow', {
        workflowId: derivationWorkflowId(deps.taskQueue, input.drvPath),
        taskQueue: deps.taskQueue,
        args: [derivation],
        signal: addWaiterSignal,
        signalArgs: [{ workflowId: waiterWorkflowId, priority: input.priority }],
        typedSearchAttributes: [
          { key: RingmasterSystem, value: input.system },
          { key: RingmasterStatus, value: 'running' },
        ],
      });
    },

    async setBuildPriority(input: { buildId: string; priority: number }): Promise<void> {
      await db('builds').where({ id: input.buildId }).update({ priority: input.priority, updated_at: db.fn.now() });
    },

    /** Records the build's result: outputs, products, metrics, closure size, its compressed log. */
    async finishBuild(input: { buildId: string; status: BuildStatus; errorMessage: string | null; top: DerivationResult | null }): Promise<void> {
      const { buildId, status, top } = input;
      const outputs = status === 'succeeded' && top ? top.outputs : {};
      const products: BuildProduct[] = await readBuildProductsOfOutputs(outputs).catch(() => []);
      const metrics: BuildMetric[] = [];
      for (const path of Object.values(outputs)) metrics.push(...(await readBuildMetrics(path).catch(() => [])));
      const size = status === 'succeeded' && Object.keys(outputs).length > 0 ? await closureSize(Object.values(outputs)).catch(() => null) : null;

      // The log: compress this build's own live log; a build that shared another build's realisation points at that log.
      let logPath: string | null = null;
      if (fs.existsSync(liveLogPath(deps.config.dataDir, buildId))) {
        const writer = await BuildLogWriter.open(deps.config.dataDir, buildId);
        logPath = await writer.finish();
      } else if (fs.existsSync(compressedLogPath(deps.config.dataDir, buildId))) {
        logPath = compressedLogPath(deps.config.dataDir, buildId);
      } else if (top?.logPath) {
        logPath = fs.existsSync(top.logPath) ? top.logPath : fs.existsSync(`${top.logPath}.gz`) ? `${top.logPath}.gz` : top.logPath;
      }
      const builderId = top?.builderId && top.builderId !== 'local' ? top.builderId : null;

      await db.transaction(async (trx) => {
        await trx('builds').where({ id: buildId }).update({
          status,
          error_message: status === 'succeeded' ? null : input.errorMessage,
          outputs: JSON.stringify(outputs),
          build_output_path: outputs.out ?? Object.values(outputs)[0] ?? null,
          closure_size: size,
          completed_at: trx.fn.now(),
          updated_at: trx.fn.now(),
          ...(logPath ? { log_path: logPath } : {}),
          ...(builderId ? { builder_id: builderId } : {}),
        });
        await trx('build_outputs').where({ build_id: buildId }).delete();
        await trx('build_products').where({ build_id: buildId }).delete();
        await trx('build_metrics').where({ build_id: buildId }).delete();
        const outputRows = Object.entries(outputs).map(([name, path]) => ({ build_id: buildId, name, path }));
        if (outputRows.length) await trx('build_outputs').insert(outputRows);
        if (products.length) {
          await trx('build_products').insert(
            products.map((p) => ({
              build_id: buildId,
              product_type: p.type,
              subtype: p.subtype,
              name: p.name,
              path: p.path,
              sha256_hash: p.sha256,
              file_size: p.size,
              content_type: p.contentType,
              is_directory: p.isDirectory,
            })),
          );
        }
        const seen = new Set<string>();
        const metricRows = metrics.filter((m) => (seen.has(m.name) ? false : (seen.add(m.name), true)));
        if (metricRows.length) await trx('build_metrics').insert(metricRows.map((m) => ({ build_id: buildId, name: m.name, value: m.value, unit: m.unit })));
        await closeUnfinishedSteps(trx as never, buildId, status === 'succeeded' ? 'succeeded' : status === 'cancelled' ? 'cancelled' : 'skipped');
      });
      if (Object.keys(outputs).length > 0) await serveBuildOutputs({ db, gcRootsDir: deps.config.gcRootsDir, client: deps.client, taskQueue: deps.taskQueue }, buildId, Object.values(outputs));
    },
  };
}

export type BuildActivities = ReturnType<typeof createBuildActivities>;
