import { definePage, defineRecordPage } from '../page';
import { Layout } from '../layout';
import { ApiButton, Empty, Pager, Section, Status, Table, Time, TimeFact } from '../components';
import { cutPage, pageWindow } from '../paging';
import { findChannel, listChannels, recentCompletedEvaluations } from '../../queries/channels';
import { findProject } from '../../queries/projects';
import { findJobsetById, jobsetNames } from '../../queries/jobsets';
import { findEvaluation } from '../../queries/evaluations';
import { publicBaseUrl } from '../../public-url';

/** How many of its jobset's newest completed evaluations the promote form offers. */
const PROMOTABLE_SHOWN = 20;

/** Channels by name (GET /api/v1/channels' query, paged): what each serves now and since when. */
export const channelsPage = definePage({
  path: '/channels',
  async render(input) {
    const { deps, viewer, query } = input;
    const window = pageWindow(query);
    const { rows, more } = cutPage(await listChannels(deps.db, { limit: window.limit + 1, offset: window.offset }), window);
    const names = await jobsetNames(deps.db, rows.map((c) => c.jobset_id));
    return (
      <Layout title="Channels" viewer={viewer} current="/channels">
        <p class="muted">
          A channel serves the newest good evaluation of its jobset to <code>nix-channel</code>: <code>nix-channel --add {publicBaseUrl(input)}/channel/&lt;name&gt;</code>
        </p>
        {rows.length === 0 ? (
          <Empty>No channel yet.</Empty>
        ) : (
          <Table caption="Channels" columns={['Channel', 'Project / jobset', 'Promoted when', 'Current evaluation', 'Promoted at']}>
            {rows.map((c) => (
              <tr>
                <td>
                  <a href={`/channels/${c.id}`}>{c.name}</a>
                </td>
                <td>
                  <a href={`/projects/${c.project_id}`}>{names.get(c.jobset_id)?.project_name ?? c.project_id}</a> / <a href={`/jobsets/${c.jobset_id}`}>{names.get(c.jobset_id)?.jobset_name ?? c.jobset_id}</a>
                </td>
                <td>{c.aggregate_job ? <>job <code>{c.aggregate_job}</code> succeeds</> : 'every build succeeds'}</td>
                <td>{c.current_evaluation_id ? <a href={`/evaluations/${c.current_evaluation_id}`}>evaluation</a> : <span class="muted">none yet</span>}</td>
                <td>
                  <Time at={c.promoted_at} />
                </td>
              </tr>
            ))}
          </Table>
        )}
        <Pager path="/channels" window={window} more={more} />
        {viewer.may('POST', '/api/v1/channels') ? (
          <Section title="Create a channel" id="create">
            <form method="post" action="/channels" class="card" aria-label="Create a channel">
              <input type="hidden" name="csrf_token" value={viewer.csrfToken ?? ''} />
              <p class="field">
                <label for="c-name">Name</label>
                <input id="c-name" name="name" required maxLength={100} pattern="[A-Za-z0-9_][A-Za-z0-9._\-]*" />
                <small>Letters, digits, '.', '_' and '-'; what nix-channel --add names it.</small>
              </p>
              <p class="field">
                <label for="c-project">Project</label>
                <input id="c-project" name="project" required maxLength={100} />
              </p>
              <p class="field">
                <label for="c-jobset">Jobset</label>
                <input id="c-jobset" name="jobset" required maxLength={100} />
              </p>
              <p class="field">
                <label for="c-aggregate">Promote when this job succeeds (optional)</label>
                <input id="c-aggregate" name="aggregate_job" maxLength={1000} />
                <small>Empty: when every build of an evaluation succeeds.</small>
              </p>
              <button type="submit">Create channel</button>
            </form>
          </Section>
        ) : null}
      </Layout>
    );
  },
});

/** One channel (GET /api/v1/channels/{id}'s query): its jobset, its rule, the evaluation it serves and its files. */
export const channelPage = defineRecordPage({
  path: '/channels/{id}',
  noun: 'channel',
  find: (db, id) => findChannel(db, id),
  async render(input, channel) {
    const { deps, viewer } = input;
    const mayPromote = viewer.may('POST', '/api/v1/channels/{channel_id}/promote/{eval_id}');
    const [project, jobset, evaluation, promotable] = await Promise.all([
      findProject(deps.db, channel.project_id),
      findJobsetById(deps.db, channel.jobset_id),
      channel.current_evaluation_id ? findEvaluation(deps.db, channel.current_evaluation_id) : Promise.resolve(undefined),
      mayPromote ? recentCompletedEvaluations(deps.db, channel.jobset_id, PROMOTABLE_SHOWN) : Promise.resolve([]),
    ]);
    const url = `${publicBaseUrl(input)}/channel/${encodeURIComponent(channel.name)}`;
    return (
      <Layout title={`Channel ${channel.name}`} viewer={viewer} current="/channels">
        <p class="crumbs">
          <a href="/channels">Channels</a> / {channel.name}
        </p>
        {viewer.may('DELETE', '/api/v1/channels/{id}') ? (
          <div class="actions">
            <ApiButton method="DELETE" path={`/api/v1/channels/${channel.id}`} label="Delete channel" name="delete-channel" tone="danger" after="/channels" confirm={`Delete the channel ${channel.name}?`} />
          </div>
        ) : null}
        <dl class="facts">
          <dt>Project</dt>
          <dd>
            <a href={`/projects/${channel.project_id}`}>{project?.name ?? channel.project_id}</a>
          </dd>
          <dt>Jobset</dt>
          <dd>
            <a href={`/jobsets/${channel.jobset_id}`}>{jobset?.name ?? channel.jobset_id}</a>
          </dd>
          <dt>Promoted when</dt>
          <dd>{channel.aggregate_job ? <>the job <code>{channel.aggregate_job}</code> succeeds</> : 'every build of an evaluation succeeds'}</dd>
          <dt>Serves</dt>
          <dd>
            {evaluation ? (
              <>
                <a href={`/evaluations/${evaluation.id}`}>the evaluation of <Time at={evaluation.created_at} /></a> <Status status={evaluation.status} />{' '}
                {evaluation.commit_hash ? <code>{evaluation.commit_hash.slice(0, 12)}</code> : null}
              </>
            ) : (
              <span class="muted">nothing yet: no evaluation was good enough</span>
            )}
          </dd>
          <TimeFact term="Promoted at" at={channel.promoted_at} />
          <TimeFact term="Created" at={channel.created_at} />
        </dl>
        {mayPromote ? (
          <Section title="Promote an evaluation" id="promote">
            {promotable.length === 0 ? (
              <Empty>No completed evaluation of its jobset yet.</Empty>
            ) : (
              <form method="post" action={`/channels/${channel.id}/promote`} class="card" aria-label="Promote an evaluation">
                <input type="hidden" name="csrf_token" value={viewer.csrfToken ?? ''} />
                <p class="field">
                  <label for="p-evaluation">Evaluation (the newest completed ones)</label>
                  <select id="p-evaluation" name="evaluation_id">
                    {promotable.map((e) => (
                      <option value={e.id} selected={e.id === channel.current_evaluation_id}>
                        {new Date(e.created_at).toISOString().replace('T', ' ').slice(0, 19)} UTC{e.commit_hash ? ` · ${e.commit_hash.slice(0, 12)}` : ''}
                        {e.id === channel.current_evaluation_id ? ' (serves now)' : ''}
                      </option>
                    ))}
                  </select>
                  <small>Only a good evaluation (by the channel's rule), not older than the one it serves.</small>
                </p>
                <button type="submit">Promote</button>
              </form>
            )}
          </Section>
        ) : null}
        <Section title="Use it" id="use">
          <pre>{`nix-channel --add ${url} ${channel.name}\nnix-channel --update`}</pre>
          {evaluation ? (
            <ul class="list">
              <li>
                <a href={`/api/v1/channels/${channel.id}/nixexprs.tar.xz`}>nixexprs.tar.xz</a> <span class="muted">the channel's Nix expressions</span>
              </li>
              <li>
                <a href={`/channel/${encodeURIComponent(channel.name)}/store-paths.xz`}>store-paths.xz</a> <span class="muted">its store paths</span>
              </li>
            </ul>
          ) : null}
        </Section>
      </Layout>
    );
  },
});
