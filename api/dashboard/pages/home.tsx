import { definePage, firstRead } from '../page';
import type { Db } from '../../../lib/db';
import { Layout } from '../layout';
import { BuildTable, Empty, Section, Status, Time, ItemList } from '../components';
import { failingJobsNow, QUEUE_COUNT_CAP, queueBySystem, recentEvaluations, runningBuilds, runningBuildsPerBuilder } from '../../queries/build-queue';
import { listBuilders } from '../../queries/builders';
import { BuilderSlots } from './builders';

/** A count of queueBySystem: at its cap, "1000+" (it counted no further). */
function atLeast(n: number): string {
  return n >= QUEUE_COUNT_CAP ? `${QUEUE_COUNT_CAP}+` : String(n);
}

/** The home page's reads, in one round. */
function homeData(db: Db) {
  return Promise.all([
    queueBySystem(db),
    runningBuilds(db, { limit: 20, offset: 0 }),
    recentEvaluations(db, { limit: 10, offset: 0 }),
    failingJobsNow(db, { limit: 20, offset: 0 }),
    listBuilders(db),
    runningBuildsPerBuilder(db),
  ]);
}

/** Home: the queue by system, running builds, recent evaluations, jobs failing now, builders and their slots. */
export const homePage = definePage({
  path: '/',
  // Everything the page shows is the same for every viewer: all of it is read beside the session lookup.
  prefetch: ({ deps }) => homeData(deps.db),
  async render(input) {
    const { deps, viewer } = input;
    const [queue, running, evaluations, failing, builders, busy] = await firstRead(input, () => homeData(deps.db));
    return (
      <Layout title="Overview" viewer={viewer} current="/">
        <div class="grid">
          <Section title="Queue by system" id="queue">
            {queue.length === 0 ? (
              <Empty>Nothing is queued or running.</Empty>
            ) : (
              <table>
                <caption class="sr-only">Queued and running builds per system</caption>
                <thead>
                  <tr>
                    <th scope="col">System</th>
                    <th scope="col">Queued</th>
                    <th scope="col">Running</th>
                  </tr>
                </thead>
                <tbody>
                  {queue.map((q) => (
                    <tr>
                      <td>
                        <a href={`/queue?system=${encodeURIComponent(q.system)}`}>{q.system}</a>
                      </td>
                      <td class="num">{atLeast(q.queued)}</td>
                      <td class="num">{atLeast(q.running)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </Section>
          <Section title="Builders" id="builders">
            <BuilderSlots builders={builders} busy={busy} />
          </Section>
        </div>
        <Section title="Running builds" id="running">
          {running.length === 0 ? <Empty>No build is running.</Empty> : <BuildTable builds={running} caption="Running builds" />}
        </Section>
        <Section title="Failing now" id="failing">
          {failing.length === 0 ? <Empty>No job fails in the newest evaluation of any jobset.</Empty> : <BuildTable builds={failing} caption="Jobs failing in the newest evaluations" />}
        </Section>
        <Section title="Recent evaluations" id="evaluations">
          <ItemList
            items={evaluations}
            empty="No evaluation yet."
            item={(e) => (
              <>
                <a href={`/evaluations/${e.id}`}>
                  {e.project_name} / {e.jobset_name}
                </a>{' '}
                <Status status={e.status} /> <Time at={e.created_at} />
              </>
            )}
          />
        </Section>
      </Layout>
    );
  },
});
