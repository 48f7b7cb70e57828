import escapeHtml from 'escape-html';
import { ACTIVE, statusTone } from './components';
import type { JobsetMatrix } from '../queries/jobset-matrix';

const EMPTY_CELL = '<td class="muted"><span aria-hidden="true">·</span><span class="sr-only">not in this evaluation</span></td>';

/** A status as its words ("dependency failed"), escaped. */
function statusWords(status: string): string {
  return escapeHtml(status.replace(/_/g, ' '));
}

/**
 * The matrix's body rows as HTML: a row header per job, then a cell per column. Written as one string, not a
 * component per cell: a page holds 500 cells of two elements each, the page's largest part, and they are all
 * alike. Every value is escaped. A cell is its link, styled as the status badge: the row's job and the column's
 * evaluation are its table headers. Only a queued or running build's badge carries its ID for the script's live
 * status (a finished one does not change while the page is open), as the Status component writes it.
 */
export function matrixRowsHtml(matrix: Pick<JobsetMatrix, 'jobs' | 'evaluations' | 'cells'>): string {
  const rows: string[] = [];
  for (const job of matrix.jobs) {
    const cells = matrix.cells.get(job);
    let row = `<tr><th scope="row">${escapeHtml(job)}</th>`;
    for (const evaluation of matrix.evaluations) {
      const cell = cells?.get(evaluation.id);
      if (!cell) {
        row += EMPTY_CELL;
        continue;
      }
      const id = escapeHtml(cell.build_id);
      const status = escapeHtml(cell.status);
      const tone = statusTone(cell.status);
      row += ACTIVE.has(cell.status)
        ? `<td><a href="/builds/${id}"><span class="status ${tone}" data-build-status="${id}" data-status="${status}">${statusWords(cell.status)}</span></a></td>`
        : `<td><a href="/builds/${id}" class="status ${tone}">${statusWords(cell.status)}</a></td>`;
    }
    rows.push(`${row}</tr>`);
  }
  return rows.join('');
}
