import { definePage } from '../page';
import { Layout } from '../layout';
import { BuildTable, Empty, Pager } from '../components';
import { cutPage, pageWindow } from '../paging';
import { queuedBuilds } from '../../queries/build-queue';

/** The queue in the order builders take it (priority, then age), optionally of one system. */
export const queuePage = definePage({
  path: '/queue',
  async render({ deps, viewer, query }) {
    const window = pageWindow(query);
    const system = typeof query.system === 'string' && /^[\w.-]{1,64}$/.test(query.system) ? query.system : undefined;
    const { rows, more } = cutPage(await queuedBuilds(deps.db, { limit: window.limit + 1, offset: window.offset, system }), window);
    return (
      <Layout title={system ? `Queue of ${system}` : 'Queue'} viewer={viewer} current="/queue">
        <p class="muted">Queued builds in the order builders take them: higher priority first, then the oldest. A build's page says why it waits.</p>
        {rows.length === 0 ? <Empty>Nothing is queued.</Empty> : <BuildTable builds={rows} caption="Queued builds" showPriority />}
        <Pager path="/queue" window={window} more={more} query={system ? { system } : {}} />
      </Layout>
    );
  },
});
