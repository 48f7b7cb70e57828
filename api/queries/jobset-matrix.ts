import type { Db } from '../../lib/db';

export interface MatrixCell {
  build_id: string;
  status: string;
}

export interface MatrixEvaluation {
  id: string;
  status: string;
  created_at: Date;
  commit_hash: string | null;
}

export interface JobsetMatrix {
  /** The newest evaluations, newest first (the matrix's columns). */
  evaluations: MatrixEvaluation[];
  /** The jobs of this page (the rows), by name. */
  jobs: string[];
  /** job name → evaluation ID → its build. */
  cells: Map<string, Map<string, MatrixCell>>;
  /** Whether there are more jobs after this page. */
  more: boolean;
}

/**
 * The job × evaluation matrix of a jobset: the jobs of its `columns` newest evaluations (a page of them, by name)
 * against those evaluations. One statement, whatever the jobset's history: the columns from the index of the
 * jobset's evaluations, the page's names and their cells from the (evaluation_id, job_name) index, each answered as
 * one JSON array (parsed once, not as a row each).
 */
export async function jobsetMatrix(db: Db, jobsetId: string, page: { limit: number; offset: number; columns: number }): Promise<JobsetMatrix> {
  const r = await db.raw(
    `WITH columns AS (
       SELECT id, status, created_at, commit_hash FROM evaluations
       WHERE jobset_id = ? AND hidden = false ORDER BY created_at DESC, id DESC LIMIT ?
     ),
     names AS (SELECT DISTINCT job_name FROM builds WHERE evaluation_id IN (SELECT id FROM columns) ORDER BY job_name LIMIT ? OFFSET ?)
     SELECT (SELECT coalesce(json_agg(json_build_array(c.id, c.status, c.created_at, c.commit_hash) ORDER BY c.created_at DESC, c.id DESC), '[]') FROM columns c)::text AS columns,
            (SELECT coalesce(json_agg(json_build_array(b.job_name, b.evaluation_id, b.id, b.status) ORDER BY b.job_name), '[]') FROM builds b
             WHERE b.evaluation_id IN (SELECT id FROM columns) AND b.job_name IN (SELECT job_name FROM names))::text AS cells`,
    [jobsetId, page.columns, page.limit + 1, page.offset],
  );
  const { columns, cells: cellRows } = r.rows[0] as { columns: string; cells: string };
  const evaluations = (JSON.parse(columns) as Array<[string, string, string, string | null]>).map(([id, status, createdAt, commitHash]) => ({
    id,
    status,
    created_at: new Date(createdAt),
    commit_hash: commitHash,
  }));
  const cells = new Map<string, Map<string, MatrixCell>>();
  for (const [jobName, evaluationId, buildId, status] of JSON.parse(cellRows) as Array<[string, string, string, string]>) {
    const row = cells.get(jobName) ?? new Map<string, MatrixCell>();
    row.set(evaluationId, { build_id: buildId, status });
    cells.set(jobName, row);
  }
  // Every name has a build in some column, so the cells' names are the page's, in the database's order (and one
  // more: whether a next page exists).
  const names = [...cells.keys()];
  const jobs = names.slice(0, page.limit);
  if (names.length > page.limit) cells.delete(names[page.limit]);
  return { evaluations, jobs, cells, more: names.length > page.limit };
}
