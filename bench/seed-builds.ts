import type { Db } from '../lib/db';

/**
 * Seeds a large read model in bulk, generated inside PostgreSQL (INSERT … SELECT over generate_series:
 * no row crosses the wire, faster than COPY from the client): `projects` × `jobsetsPerProject` jobsets,
 * each with `evaluationsPerJobset` evaluations of `jobsPerEvaluation` builds.
 * With the defaults, 20 × 5 × 100 × 100 = 1,000,000 builds.
 *
 * Statuses are spread by a hash: about 1% queued, 0.2% running, 8% failed, 0.8% cancelled, the rest
 * succeeded. The newest evaluation of each jobset also gets dependencies (every job on job-001),
 * build steps and an evaluation error; the audit log gets `auditEntries` rows.
 */
export interface SeedShape {
  projects: number;
  jobsetsPerProject: number;
  evaluationsPerJobset: number;
  jobsPerEvaluation: number;
  auditEntries: number;
}

export const MILLION_BUILDS: SeedShape = { projects: 20, jobsetsPerProject: 5, evaluationsPerJobset: 100, jobsPerEvaluation: 100, auditEntries: 50_000 };

export async function seedBuilds(db: Db, shape: SeedShape = MILLION_BUILDS, log: (line: string) => void = () => {}): Promise<{ builds: number }> {
  const started = Date.now();
  await db.raw(
    `insert into projects (name, repository_url, description)
     select 'bench-' || lpad(p::text, 3, '0'), 'https://example.org/bench-' || p || '.git', 'seeded project ' || p
     from generate_series(1, ?) p`,
    [shape.projects],
  );
  await db.raw(
    `insert into jobsets (project_id, name, nix_expression, check_interval)
     select p.id, 'js-' || j, 'release.nix', 0 from projects p cross join generate_series(1, ?) j where p.name like 'bench-%'`,
    [shape.jobsetsPerProject],
  );
  await db.raw(
    `insert into evaluations (jobset_id, status, commit_hash, trigger_kind, nr_jobs, nr_errors, created_at, started_at, completed_at)
     select js.id, 'completed', md5(js.id::text || e), 'manual', ?, 0,
            now() - ((? - e) * interval '10 minutes'), now() - ((? - e) * interval '10 minutes'), now() - ((? - e) * interval '10 minutes') + interval '30 seconds'
     from jobsets js cross join generate_series(1, ?) e`,
    [shape.jobsPerEvaluation, shape.evaluationsPerJobset, shape.evaluationsPerJobset, shape.evaluationsPerJobset, shape.evaluationsPerJobset],
  );
  log(`seed: projects, jobsets and evaluations in ${Date.now() - started} ms`);
  await db.raw(
    `insert into builds (evaluation_id, jobset_id, project_id, job_name, drv_path, system, status, priority, created_at, started_at, completed_at)
     select e.id, e.jobset_id, js.project_id, 'job-' || lpad(g::text, 3, '0'),
            '/nix/store/' || substr(md5(e.id::text || g), 1, 32) || '-job-' || g || '.drv',
            case when g % 10 = 0 then 'aarch64-linux' else 'x86_64-linux' end,
            s.status, 100, e.created_at,
            case when s.status = 'pending' then null else e.created_at + interval '5 seconds' end,
            case when s.status in ('pending', 'running') then null else e.created_at + interval '65 seconds' end
     from evaluations e
     join jobsets js on js.id = e.jobset_id
     cross join generate_series(1, ?) g
     cross join lateral (select case
         when (abs(hashtext(e.id::text || g)) % 1000) < 10 then 'pending'
         when (abs(hashtext(e.id::text || g)) % 1000) < 12 then 'running'
         when (abs(hashtext(e.id::text || g)) % 1000) < 92 then 'failed'
         when (abs(hashtext(e.id::text || g)) % 1000) < 100 then 'cancelled'
         else 'succeeded' end as status) s`,
    [shape.jobsPerEvaluation],
  );
  log(`seed: builds in ${Date.now() - started} ms`);
  const newest = `select distinct on (jobset_id) id from evaluations order by jobset_id, created_at desc`;
  await db.raw(
    `insert into build_dependencies (build_id, dependency_build_id)
     select b.id, root.id from builds b
     join builds root on root.evaluation_id = b.evaluation_id and root.job_name = 'job-001'
     where b.evaluation_id in (${newest}) and b.job_name <> 'job-001'`,
  );
  await db.raw(
    `insert into build_steps (build_id, step_number, drv_path, status, phase, machine, started_at, completed_at)
     select b.id, 1, b.drv_path, case when b.status in ('pending', 'running') then b.status else 'completed' end,
            case when b.status = 'running' then 'building' else null end, 'localhost', b.started_at, b.completed_at
     from builds b where b.evaluation_id in (${newest}) and b.status <> 'pending'`,
  );
  await db.raw(
    `insert into evaluation_errors (evaluation_id, job_name, error_message)
     select id, 'broken', 'error: attribute ''broken'' missing' from (${newest}) n`,
  );
  await db.raw(
    `insert into audit_log (actor_kind, actor_name, action, target_kind, target_id, occurred_at)
     select 'api_key', 'bench', 'POST /api/v1/builds/{id}/restart', 'build', md5(a::text), now() - a * interval '1 second'
     from generate_series(1, ?) a`,
    [shape.auditEntries],
  );
  await db.raw('vacuum analyze');
  const [{ count }] = (await db('builds').count<{ count: string }[]>('* as count')) as { count: string }[];
  log(`seed: ${count} builds, with dependencies, steps, errors and audit entries, in ${Date.now() - started} ms`);
  return { builds: Number(count) };
}
