import type { Db } from '../../lib/db';
import { fakeStorePath, seedBuild, seedEvaluation, type Row } from './seed';

/** One job of a seeded evaluation: its final status (succeeded ones get an `out` path). */
export interface SeededJob {
  status: string;
  isAggregate?: boolean;
}

/**
 * A completed evaluation of the jobset with one build per job, written as the worker writes them:
 * succeeded builds carry `outputs` and `build_outputs` rows. `createdAt` orders evaluations in time.
 */
export async function seedEvaluationWithBuilds(
  db: Db,
  jobsetId: string,
  jobs: Record<string, SeededJob | string>,
  fields: Row = {},
): Promise<{ evaluation: Row; builds: Record<string, Row> }> {
  const evaluation = await seedEvaluation(db, jobsetId, fields);
  const builds: Record<string, Row> = {};
  for (const [jobName, spec] of Object.entries(jobs)) {
    const { status, isAggregate } = typeof spec === 'string' ? { status: spec, isAggregate: false } : spec;
    const out = status === 'succeeded' ? fakeStorePath(jobName.replace(/[^A-Za-z0-9+-]/g, '-')) : null;
    const build = await seedBuild(db, {
      evaluation,
      job_name: jobName,
      status,
      is_aggregate: isAggregate ?? false,
      outputs: out ? { out } : {},
      build_output_path: out,
      completed_at: ['pending', 'running'].includes(status) ? null : db.fn.now(),
    });
    if (out) await db('build_outputs').insert({ build_id: build.id, name: 'out', path: out });
    builds[jobName] = build;
  }
  return { evaluation, builds };
}
