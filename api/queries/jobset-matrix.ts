import type { Db } from '../../lib/db';

export interface MatrixCell {
  build_id: string;
  status: string;
}

export interface JobsetMatrix {
  /** The newest evaluations, newest first (the matrix's columns). */
  evaluations: Array<{ id: string; status: string; created_at: Date; commit_hash: string | null }>;
  /** The jobs of this page (the rows), by name. */
  jobs: string[];
  /** job name → evaluation ID → its build. */
  cells: Map<string, Map<string, MatrixCell>>;
  /** Whether there are more jobs after this page. */
  more: boolean;
}

/**
 * The job × evaluation matrix of a jobset: the jobs of its newest evaluation (a page of them, by name)
 * against its `columns` newest evaluations. Three indexed queries whatever the jobset's history.
 */
export async function jobsetMatrix(db: Db, jobsetId: string, page: { limit: number; offset: number; columns: number }): Promise<JobsetMatrix> {
  const evaluations = (await db('evaluations')
    .select('id', 'status', 'created_at', 'commit_hash')
    .where({ jobset_id: jobsetId, hidden: false })
    .orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }])
    .limit(page.columns)) as JobsetMatrix['evaluations'];
  const cells = new Map<string, Map<string, MatrixCell>>();
  if (evaluations.length === 0) return { evaluations, jobs: [], cells, more: false };
  const names = (await db('builds')
    .distinct('job_name')
    .whereIn('evaluation_id', evaluations.map((e) => e.id))
    .orderBy('job_name')
    .limit(page.limit + 1)
    .offset(page.offset)) as { job_name: string }[];
  const more = names.length > page.limit;
  const jobs = names.slice(0, page.limit).map((n) => n.job_name);
  if (jobs.length === 0) return { evaluations, jobs, cells, more };
  const rows = (await db('builds')
    .select('id', 'job_name', 'evaluation_id', 'status')
    .whereIn('evaluation_id', evaluations.map((e) => e.id))
    .whereIn('job_name', jobs)) as { id: string; job_name: string; evaluation_id: string; status: string }[];
  for (const r of rows) {
    const row = cells.get(r.job_name) ?? new Map<string, MatrixCell>();
    row.set(r.evaluation_id, { build_id: r.id, status: r.status });
    cells.set(r.job_name, row);
  }
  return { evaluations, jobs, cells, more };
}
