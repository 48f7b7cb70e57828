import { definePage } from '../page';
import { Layout } from '../layout';
import { Empty, Section, Time, Table } from '../components';
import { listBuilders, listBuilderSessions, type BuilderRow, type BuilderSessionRow } from '../../queries/builders';
import { QUEUE_COUNT_CAP, runningBuildsPerBuilder } from '../../queries/build-queue';

function backedOff(b: BuilderRow): boolean {
  return b.disabled_until !== null && new Date(b.disabled_until).getTime() > Date.now();
}

/** Builders with their slots in use; the worker's own Nix when none is configured. */
/** A count of runningBuildsPerBuilder: at its cap, "1000+" (it counted no further). */
function atLeast(n: number): string {
  return n >= QUEUE_COUNT_CAP ? `${QUEUE_COUNT_CAP}+` : String(n);
}

export function BuilderSlots({ builders, busy }: { builders: BuilderRow[]; busy: Map<string | null, number> }) {
  if (builders.length === 0) {
    return <Empty>No remote builder: the worker's own Nix builds ({atLeast(busy.get(null) ?? 0)} running).</Empty>;
  }
  return (
    <ul class="list">
      {builders.map((b) => {
        const used = busy.get(b.id) ?? 0;
        return (
          <li>
            <strong>{b.name}</strong>{' '}
            <meter min={0} max={b.max_jobs} value={used} aria-label={`slots of ${b.name} in use`}>
              {used}/{b.max_jobs}
            </meter>{' '}
            <span>
              {used}/{b.max_jobs} slots
            </span>
            {!b.enabled ? <span class="status neutral">disabled</span> : backedOff(b) ? <span class="status bad">backing off</span> : null}
          </li>
        );
      })}
    </ul>
  );
}

export const buildersPage = definePage({
  path: '/builders',
  async render({ deps, viewer }) {
    const [builders, busy, sessions] = await Promise.all([listBuilders(deps.db), runningBuildsPerBuilder(deps.db), listBuilderSessions(deps.db)]);
    return (
      <Layout title="Builders" viewer={viewer} current="/builders">
        <Section title="Remote builders" id="remote">
          {builders.length === 0 ? (
            <Empty>No remote builder is configured: builds run on the worker's own Nix ({busy.get(null) ?? 0} running now).</Empty>
          ) : (
            <Table caption="Remote builders" columns={['Name', 'Systems', 'Features', 'Slots in use', 'Back-off until', 'Last failure']}>
              {builders.map((b) => (
                <tr>
                  <td>
                    {b.name} {!b.enabled ? <span class="status neutral">disabled</span> : null}
                  </td>
                  <td>{b.systems.join(', ')}</td>
                  <td>{b.supported_features.join(', ') || '—'}</td>
                  <td class="num">
                    {busy.get(b.id) ?? 0} / {b.max_jobs}
                  </td>
                  <td>{backedOff(b) ? <Time at={b.disabled_until} /> : <span class="muted">—</span>}</td>
                  <td>{b.last_failure ? <code>{b.last_failure}</code> : <span class="muted">—</span>}{b.consecutive_failures > 0 ? ` (${b.consecutive_failures} in a row)` : ''}</td>
                </tr>
              ))}
            </Table>
          )}
        </Section>
        <Section title="Builder agents" id="agents">
          <AgentSessions sessions={sessions} />
        </Section>
      </Layout>
    );
  },
});

function AgentSessions({ sessions }: { sessions: BuilderSessionRow[] }) {
  if (sessions.length === 0) return <Empty>No builder agent has connected.</Empty>;
  return (
    <ul class="list">
      {sessions.map((s) => (
        <li>
          <strong>{s.name}</strong> {s.connected ? <span class="status ok">connected</span> : <span class="status neutral">gone</span>} {s.systems.join(', ')} · {s.current_jobs}/{s.max_jobs} slots in use · last seen <Time at={s.last_seen} />
          {s.disabled_until ? (
            <>
              {' '}
              · backing off until <Time at={s.disabled_until} />
            </>
          ) : null}
        </li>
      ))}
    </ul>
  );
}
