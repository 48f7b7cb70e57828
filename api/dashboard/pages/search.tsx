import { definePage } from '../page';
import { Layout } from '../layout';
import { BuildTable, Empty, Pager, Section } from '../components';
import { cutPage, pageWindow } from '../paging';
import { BUILD_STATUSES, type BuildStatus } from '../../queries/builds';
import { quickSearch, searchBuildRows, type BuildSearch } from '../../queries/search';

/** The text filters of GET /api/v1/search, with the bounds of its schema (shorter or longer is not searched). */
const TEXT_FILTERS = [
  { name: 'q', label: 'Job name contains', min: 3, max: 200 },
  { name: 'project', label: 'Project', min: 1, max: 100 },
  { name: 'jobset', label: 'Jobset', min: 1, max: 100 },
  { name: 'system', label: 'System', min: 1, max: 100 },
  { name: 'store_path', label: 'Store path (or its prefix)', min: 3, max: 500 },
] as const;
const TIME_FILTERS = [
  { name: 'from', label: 'Created from (UTC)' },
  { name: 'to', label: 'Created before (UTC)' },
] as const;
/** The quick search's bounds (GET /api/v1/search/quick) and how many of each kind it shows. */
const QUICK_MIN = 2;
const QUICK_LIMIT = 10;
/**
 * Up to how many matching builds the page counts exactly; past it, it says "about" the planner's estimate. A page
 * counts a tenth of what the API does (EXACT_COUNT_LIMIT): a search by a common name matches 100,000 builds, and
 * walking 10,001 index entries on every view was its costliest statement.
 */
const EXACT_TOTAL_UP_TO = 1000;

type Filters = Partial<Record<'q' | 'project' | 'jobset' | 'system' | 'store_path' | 'from' | 'to' | 'status', string>>;

function text(value: unknown): string {
  return typeof value === 'string' ? value.replace(/\u0000/g, '').trim() : '';
}

/** A date or date-time typed into the form (`2026-11-30` or `2026-11-30T04:00`), read as UTC; undefined otherwise. */
function timeOf(value: string): string | undefined {
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?$/.test(value)) return undefined;
  const t = Date.parse(value.length === 10 ? `${value}T00:00:00Z` : `${value}Z`);
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}

/** The query's filters that the API would accept, and the search they make. */
function searchOf(query: Record<string, unknown>): { filters: Filters; search: Omit<BuildSearch, 'limit' | 'offset'>; notes: string[] } {
  const filters: Filters = {};
  const search: Omit<BuildSearch, 'limit' | 'offset'> = {};
  const notes: string[] = [];
  for (const f of TEXT_FILTERS) {
    const value = text(query[f.name]);
    if (!value) continue;
    filters[f.name] = value;
    if (value.length >= f.min && value.length <= f.max) search[f.name] = value;
    else notes.push(`${f.label}: between ${f.min} and ${f.max} characters to search builds.`);
  }
  const status = text(query.status);
  if ((BUILD_STATUSES as readonly string[]).includes(status)) {
    filters.status = status;
    search.status = status as BuildStatus;
  }
  for (const f of TIME_FILTERS) {
    const value = text(query[f.name]);
    if (!value) continue;
    filters[f.name] = value;
    const at = timeOf(value);
    if (at) search[f.name] = at;
    else notes.push(`${f.label}: a date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM).`);
  }
  if (search.from && search.to && search.from > search.to) {
    notes.push('“Created from” is after “created before”.');
    delete search.to;
  }
  return { filters, search, notes };
}

/**
 * Search: the header's box lands here with `q`. Projects, jobsets and jobs whose names contain it (the quick
 * search), and builds by the advanced search's filters (GET /api/v1/search's query, paged, newest first).
 */
export const searchPage = definePage({
  path: '/search',
  async render({ deps, viewer, query }) {
    const { filters, search, notes } = searchOf(query);
    const window = pageWindow(query);
    const q = filters.q ?? '';
    const hasCriteria = Object.keys(search).length > 0;
    const [quick, builds] = await Promise.all([
      q.length >= QUICK_MIN && q.length <= 100 ? quickSearch(deps.db, q, QUICK_LIMIT) : Promise.resolve(undefined),
      hasCriteria ? searchBuildRows(deps.db, { ...search, limit: window.limit + 1, offset: window.offset }, EXACT_TOTAL_UP_TO) : Promise.resolve(undefined),
    ]);
    const found = builds ? cutPage(builds.rows, window) : undefined;
    return (
      <Layout title="Search" viewer={viewer} current="/search" search={q}>
        <form method="get" action="/search" class="card filters" aria-label="Search builds">
          {TEXT_FILTERS.map((f) => (
            <p class="field">
              <label for={`s-${f.name}`}>{f.label}</label>
              <input id={`s-${f.name}`} name={f.name} value={filters[f.name] ?? ''} maxLength={f.max} />
            </p>
          ))}
          <p class="field">
            <label for="s-status">Status</label>
            <select id="s-status" name="status">
              <option value="">any</option>
              {BUILD_STATUSES.map((s) => (
                <option value={s} selected={filters.status === s}>
                  {s.replace(/_/g, ' ')}
                </option>
              ))}
            </select>
          </p>
          {TIME_FILTERS.map((f) => (
            <p class="field">
              <label for={`s-${f.name}`}>{f.label}</label>
              <input id={`s-${f.name}`} name={f.name} value={filters[f.name] ?? ''} placeholder="YYYY-MM-DD" />
            </p>
          ))}
          <button type="submit">Search builds</button>
        </form>
        {notes.length > 0 ? (
          <ul class="form-error">
            {notes.map((n) => (
              <li>{n}</li>
            ))}
          </ul>
        ) : null}
        {quick ? (
          <Section title={`Names containing “${q}”`} id="names">
            {quick.projects.length + quick.jobsets.length + quick.jobs.length === 0 ? (
              <Empty>No project, jobset or job.</Empty>
            ) : (
              <ul class="list">
                {quick.projects.map((p) => (
                  <li>
                    project <a href={`/projects/${p.id}`}>{p.name}</a>
                  </li>
                ))}
                {quick.jobsets.map((j) => (
                  <li>
                    jobset <a href={`/jobsets/${j.id}`}>{j.name}</a> <span class="muted">of {j.project_name}</span>
                  </li>
                ))}
                {quick.jobs.map((j) => (
                  <li>
                    job{' '}
                    <a href={`/search?${new URLSearchParams({ q: j.name, project: j.project_name, jobset: j.jobset_name }).toString()}`}>{j.name}</a>{' '}
                    <span class="muted">
                      in <a href={`/jobsets/${j.jobset_id}`}>{j.project_name} / {j.jobset_name}</a>
                    </span>
                  </li>
                ))}
              </ul>
            )}
          </Section>
        ) : null}
        {found && builds ? (
          <Section title={`Builds (${builds.total_exact ? '' : 'about '}${builds.total.toLocaleString('en')})`} id="builds">
            {found.rows.length === 0 ? <Empty>No build matches.</Empty> : <BuildTable builds={found.rows} caption="Builds that match, newest first" />}
            <Pager path="/search" window={window} more={found.more} query={filters as Record<string, string>} />
          </Section>
        ) : (
          <Empty>Type a name in the search box, or choose filters, to search builds.</Empty>
        )}
      </Layout>
    );
  },
});
