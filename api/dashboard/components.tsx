import type { ComponentChildren } from 'preact';
import type { PageWindow } from './paging';

const FINISHED_OK = new Set(['succeeded', 'completed']);
/** The statuses that still change: their badges carry the build's ID for the script's live status. */
export const ACTIVE = new Set(['pending', 'running']);

/** The colour class of a status badge. */
export function statusTone(status: string): string {
  return FINISHED_OK.has(status) ? 'ok' : ACTIVE.has(status) ? 'active' : status === 'cancelled' || status === 'aborted' ? 'neutral' : 'bad';
}

/** A status word with its colour class; builds' badges carry their ID so the script keeps them live. */
export function Status({ status, buildId }: { status: string; buildId?: string }) {
  return (
    <span class={`status ${statusTone(status)}`} data-build-status={buildId} data-status={status}>
      {status.replace(/_/g, ' ')}
    </span>
  );
}

/** A point in time, readable without script and exact in its datetime attribute. */
export function Time({ at }: { at: Date | string | null | undefined }) {
  if (!at) return <span class="muted">—</span>;
  const d = at instanceof Date ? at : new Date(at);
  return <time dateTime={d.toISOString()}>{d.toISOString().replace('T', ' ').slice(0, 19)} UTC</time>;
}

/** One fact of a fact list (`dl.facts`): its term and what it is. */
export function Fact({ term, children }: { term: string; children: ComponentChildren }) {
  return (
    <>
      <dt>{term}</dt>
      <dd>{children}</dd>
    </>
  );
}

/** A fact that is a point in time. */
export function TimeFact({ term, at }: { term: string; at: Date | string | null | undefined }) {
  return (
    <Fact term={term}>
      <Time at={at} />
    </Fact>
  );
}

export function Duration({ from, to }: { from: Date | null | undefined; to: Date | null | undefined }) {
  if (!from) return <span class="muted">—</span>;
  const seconds = Math.max(0, Math.round(((to ?? new Date()).getTime() - from.getTime()) / 1000));
  const text = seconds < 60 ? `${seconds} s` : seconds < 3600 ? `${Math.floor(seconds / 60)} min ${seconds % 60} s` : `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return <span>{to ? text : `${text} so far`}</span>;
}

export function Section({ title, id, children }: { title: string; id?: string; children: ComponentChildren }) {
  return (
    <section aria-labelledby={id ? `${id}-h` : undefined} id={id}>
      <h2 id={id ? `${id}-h` : undefined}>{title}</h2>
      {children}
    </section>
  );
}

/** A table that may scroll sideways on a narrow screen: a focusable, named region, so keyboards can scroll it. */
export function Scroll({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <div class="scroll" tabIndex={0} role="region" aria-label={label}>
      {children}
    </div>
  );
}

/**
 * A scrollable table with its caption (read by screen readers, and the scroll region's name) and its
 * column heads; a null column is left out, a `{ hidden }` one is named for screen readers only.
 */
export function Table({ caption, columns, children }: { caption: string; columns: Array<string | { hidden: string } | null>; children: ComponentChildren }) {
  return (
    <Scroll label={caption}>
      <table>
        <caption class="sr-only">{caption}</caption>
        <thead>
          <tr>
            {columns
              .filter((c) => c !== null)
              .map((c) => (
                <th scope="col">{typeof c === 'string' ? c : <span class="sr-only">{c!.hidden}</span>}</th>
              ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </Scroll>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

/** Previous/next links of a paged list; other query parameters are kept. */
export function Pager({ path, window, more, param = 'page', query = {} }: { path: string; window: PageWindow; more: boolean; param?: string; query?: Record<string, string> }) {
  if (window.page === 1 && !more) return null;
  const href = (page: number) => `${path}?${new URLSearchParams({ ...query, [param]: String(page) }).toString()}`;
  return (
    <nav class="pager" aria-label="Pages">
      {window.page > 1 ? <a href={href(window.page - 1)} rel="prev">← Newer</a> : <span />}
      <span class="muted">page {window.page}</span>
      {more ? <a href={href(window.page + 1)} rel="next">Older →</a> : <span />}
    </nav>
  );
}

export interface BuildListItem {
  id: string;
  job_name: string;
  system: string;
  status: string;
  priority?: number;
  created_at: Date;
  started_at?: Date | null;
  completed_at?: Date | null;
}

/** A table of builds: job, system, status (live), and when. */
export function BuildTable({ builds, caption, showPriority = false }: { builds: BuildListItem[]; caption: string; showPriority?: boolean }) {
  return (
    <Table caption={caption} columns={['Job', 'System', 'Status', showPriority ? 'Priority' : null, 'Queued']}>
      {builds.map((b) => (
        <tr>
          <td>
            <a href={`/builds/${b.id}`}>{b.job_name}</a>
          </td>
          <td>{b.system}</td>
          <td>
            <Status status={b.status} buildId={b.id} />
          </td>
          {showPriority ? <td>{b.priority}</td> : null}
          <td>
            <Time at={b.created_at} />
          </td>
        </tr>
      ))}
    </Table>
  );
}

/**
 * A button that calls the API through the script (cookie + x-csrf-token). It is rendered `hidden`
 * and shown by the script, so a page without script shows no button that cannot work.
 */
export function ApiButton(props: {
  method: string;
  path: string;
  label: string;
  confirm?: string;
  after?: 'reload' | 'status' | string;
  name?: string;
  tone?: 'danger' | 'plain';
  /** The JSON body's fields, sent as they are. */
  fields?: Record<string, string>;
}) {
  return (
    <form class="api-form inline" data-api-method={props.method} data-api-path={props.path} data-after={props.after ?? 'reload'} data-confirm={props.confirm} hidden>
      {Object.entries(props.fields ?? {}).map(([name, value]) => (
        <input type="hidden" name={name} value={value} />
      ))}
      <button type="submit" class={props.tone === 'danger' ? 'danger' : undefined} data-action={props.name}>
        {props.label}
      </button>
      <span class="form-error" role="alert" />
    </form>
  );
}

/** A plain list (`ul.list`) of items, one `li` each, or the `empty` sentence when there is none. */
export function ItemList<T>({ items, empty, item }: { items: T[]; empty: string; item: (value: T) => ComponentChildren }) {
  if (items.length === 0) return <Empty>{empty}</Empty>;
  return (
    <ul class="list">
      {items.map((value) => (
        <li>{item(value)}</li>
      ))}
    </ul>
  );
}
