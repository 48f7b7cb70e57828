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
 * The job × evaluation matrix of a jobset: the jobs of its `columns` newest evaluations (a page of them, by name)
 * against those evaluations. Two indexed queries side by side, whatever the jobset's history: the columns, and the
 * cells of the page's jobs (the names chosen inside the same statement).
 */
export async function jobsetMatrix(db: Db, jobsetId: string, page: { limit: number; offset: number; columns: number }): Promise<JobsetMatrix> {
  const newest = () =>
    db('evaluations')
      .where({ jobset_id: jobsetId, hidden: false })
      .orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }])
      .limit(page.columns);
  const [evaluations, rows] = await Promise.all([
    newest().select('id', 'status', 'created_at', 'commit_hash') as Promise<JobsetMatrix['evaluations']>,
    db.raw(
      `WITH columns AS ?,
            names AS (SELECT DISTINCT job_name FROM builds WHERE evaluation_id IN (SELECT id FROM columns) ORDER BY job_name LIMIT ? OFFSET ?)
       SELECT b.id, b.job_name, b.evaluation_id, b.status FROM builds b
       WHERE b.evaluation_id IN (SELECT id FROM columns) AND b.job_name IN (SELECT job_name FROM names)
       ORDER BY b.job_name`,
      [newest().select('id'), page.limit + 1, page.offset],
    ),
  ]);
  const cells = new Map<string, Map<string, MatrixCell>>();
  for (const r of rows.rows as { id: string; job_name: string; evaluation_id: string; status: string }[]) {
    const row = cells.get(r.job_name) ?? new Map<string, MatrixCell>();
    row.set(r.evaluation_id, { build_id: r.id, status: r.status });
    cells.set(r.job_name, row);
  }
  // Every name has a build in some column, so the cells' names are the page's, in the database's order (and one
  // more: whether a next page exists).
  const names = [...cells.keys()];
  const jobs = names.slice(0, page.limit);
  if (names.length > page.limit) cells.delete(names[page.limit]);
  return { evaluations, jobs, cells, more: names.length > page.limit };
}
