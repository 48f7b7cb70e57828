import { definePage, firstRead } from '../page';
import type { Db } from '../../../lib/db';
import { Layout } from '../layout';
import { Section, Table } from '../components';
import { systemMetrics, type BuildCountPoint, type DurationPoint, type SystemMetrics } from '../../queries/metrics';
import { cachedSeries, type SeriesQuery } from '../../routes/metrics';
import { FAILED_BUILD_STATUSES } from '../../queries/builds';

/** Bucket sizes the page offers (30 days by default: 120, 30 or 5 rows). */
const BUCKETS = { '6h': '6 hours', '1d': 'day', '7d': 'week' } as const;
type PageBucket = keyof typeof BUCKETS;

const CHART = { width: 640, height: 160, top: 10, bottom: 20, left: 40 };

function failedOf(p: BuildCountPoint): number {
  return FAILED_BUILD_STATUSES.reduce((n, s) => n + (p.by_status[s] ?? 0), 0);
}

function seconds(value: number | null): string {
  if (value === null) return '—';
  return value < 120 ? `${value.toFixed(1)} s` : `${(value / 60).toFixed(1)} min`;
}

function label(iso: string, bucket: PageBucket): string {
  return bucket === '6h' ? iso.slice(5, 16).replace('T', ' ') : iso.slice(0, 10);
}

/** Builds per bucket as bars (failed ones stacked on top), drawn on the server: no script, no chart library. */
function BuildsChart({ points, bucket }: { points: BuildCountPoint[]; bucket: PageBucket }) {
  const max = Math.max(1, ...points.map((p) => p.total));
  const plotHeight = CHART.height - CHART.top - CHART.bottom;
  const step = (CHART.width - CHART.left) / Math.max(1, points.length);
  const y = (n: number) => (n / max) * plotHeight;
  const summary = `Builds created per ${BUCKETS[bucket]}, from ${label(points[0]?.time ?? '', bucket)}: at most ${max} in one ${BUCKETS[bucket]}; the table below has every figure.`;
  return (
    <svg class="chart" viewBox={`0 0 ${CHART.width} ${CHART.height}`} role="img" aria-label={summary}>
      <line class="axis" x1={CHART.left} x2={CHART.width} y1={CHART.top + plotHeight} y2={CHART.top + plotHeight} />
      <text x={CHART.left - 4} y={CHART.top + 8} text-anchor="end">
        {max}
      </text>
      <text x={CHART.left - 4} y={CHART.top + plotHeight} text-anchor="end">
        0
      </text>
      {points.map((p, i) => {
        const x = CHART.left + i * step + step * 0.1;
        const w = Math.max(1, step * 0.8);
        const failed = failedOf(p);
        return (
          <g>
            <rect class="bar" x={x} width={w} y={CHART.top + plotHeight - y(p.total)} height={y(p.total)} />
            {failed > 0 ? <rect class="bar bad" x={x} width={w} y={CHART.top + plotHeight - y(p.total)} height={y(failed)} /> : null}
          </g>
        );
      })}
      <text x={CHART.left} y={CHART.height - 4}>
        {label(points[0]?.time ?? '', bucket)}
      </text>
      <text x={CHART.width} y={CHART.height - 4} text-anchor="end">
        {label(points[points.length - 1]?.time ?? '', bucket)}
      </text>
    </svg>
  );
}

/** The builds chart and the table of counts and durations per bucket, newest first. */
function SeriesOf({ counts, durations: points, bucket }: { counts: BuildCountPoint[]; durations: DurationPoint[]; bucket: PageBucket }) {
  const durations = new Map(points.map((p) => [p.time, p]));
  return (
    <>
      <BuildsChart points={counts} bucket={bucket} />
      <p class="legend">
        <span class="swatch" /> builds created <span class="swatch bad" /> of them failed
      </p>
      <Table caption="Builds created and durations of builds finished, per bucket, newest first" columns={['From (UTC)', 'Created', 'Failed', 'Finished', 'Duration p50', 'p90', 'p99']}>
        {[...counts].reverse().map((p) => {
          const d = durations.get(p.time);
          return (
            <tr>
              <th scope="row">{label(p.time, bucket)}</th>
              <td class="num">{p.total.toLocaleString('en')}</td>
              <td class="num">{failedOf(p).toLocaleString('en')}</td>
              <td class="num">{(d?.count ?? 0).toLocaleString('en')}</td>
              <td class="num">{seconds(d?.p50 ?? null)}</td>
              <td class="num">{seconds(d?.p90 ?? null)}</td>
              <td class="num">{seconds(d?.p99 ?? null)}</td>
            </tr>
          );
        })}
      </Table>
    </>
  );
}

function bucketOf(query: Record<string, unknown>): PageBucket {
  return typeof query.bucket === 'string' && query.bucket in BUCKETS ? (query.bucket as PageBucket) : '1d';
}

/**
 * What the page shows, read whoever looks: the systems, and the two series over the default range (whole hours:
 * read from the rollup, the durations of the whole server from its 6-hour or daily periods; concurrent renders
 * share each series' read, see cachedSeries).
 */
async function metricsOf(db: Db, bucket: PageBucket): Promise<{ systems: SystemMetrics[]; countsJson: string; durationsJson: string }> {
  const series: SeriesQuery = { bucket };
  const [systems, countsJson, durationsJson] = await Promise.all([systemMetrics(db), cachedSeries(db, 'builds', series), cachedSeries(db, 'duration', series)]);
  return { systems, countsJson, durationsJson };
}

/**
 * Metrics: builds and queue by system with builders' slots (GET /api/v1/metrics/systems' query), and the
 * builds and duration series (the same JSON the routes answer: 6h, 1d or 7d buckets over the default range are
 * whole periods, read from the rollup on every request, so the page waits for them); all read beside the viewer's
 * session lookup (prefetch).
 */
export const metricsPage = definePage({
  path: '/metrics',
  prefetch: ({ deps, query }) => metricsOf(deps.db, bucketOf(query)),
  async render(input) {
    const { viewer, query } = input;
    const bucket = bucketOf(query);
    const { systems, countsJson, durationsJson } = await firstRead(input, () => metricsOf(input.deps.db, bucket));
    return (
      <Layout title="Metrics" viewer={viewer} current="/metrics">
        <Section title="By system" id="systems">
          <Table caption="Builds, queue and slots by system" columns={['System', 'Builds', 'Queued', 'Running', 'Succeeded', 'Failed', 'Builders', 'Slots in use']}>
            {systems.map((s) => (
              <tr>
                <th scope="row">
                  <a href={`/queue?system=${encodeURIComponent(s.system)}`}>{s.system}</a>
                </th>
                <td class="num">{s.builds.toLocaleString('en')}</td>
                <td class="num">{s.queued.toLocaleString('en')}</td>
                <td class="num">{s.running.toLocaleString('en')}</td>
                <td class="num">{s.succeeded.toLocaleString('en')}</td>
                <td class="num">{s.failed.toLocaleString('en')}</td>
                <td class="num">{s.builders}</td>
                <td class="num">
                  {s.slots_in_use} / {s.slots}
                </td>
              </tr>
            ))}
          </Table>
        </Section>
        <Section title={`Builds per ${BUCKETS[bucket]}, last 30 days`} id="series">
          <nav aria-label="Bucket size" class="legend">
            Per{' '}
            {(Object.keys(BUCKETS) as PageBucket[]).map((b) => (
              <>
                <a href={`/metrics?bucket=${b}`} aria-current={b === bucket ? 'page' : undefined}>
                  {BUCKETS[b]}
                </a>{' '}
              </>
            ))}
          </nav>
          <SeriesOf counts={(JSON.parse(countsJson) as { points: BuildCountPoint[] }).points} durations={(JSON.parse(durationsJson) as { points: DurationPoint[] }).points} bucket={bucket} />
        </Section>
      </Layout>
    );
  },
});
