import { defineRoute, HANDLED, type RouteDef } from '../route';
import { notFound } from '../errors';
import { errorBody, identifier } from '../schemas';
import type { Db } from '../../lib/db';
import { evaluationSource, findChannelByName, type ChannelRow } from '../queries/channels';
import { channelNixexprs, channelStorePaths, currentEvaluationOf } from '../channel-files';
import type { ChannelFile } from '../channel-file-cache';
import { notModified, sendCached } from '../cached-response';
import { binaryCacheUrl, publicBaseUrl } from '../public-url';
import { CHANNEL_FILE_MAX_AGE_SECONDS } from './channels';

const nameParams = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: identifier },
};

async function requireChannelNamed(db: Db, name: string): Promise<ChannelRow> {
  const channel = await findChannelByName(db, name);
  if (!channel) throw notFound('channel', name);
  return channel;
}

const errors = { 400: errorBody, 404: errorBody };
const text = (description: string) => ({ description, contentType: 'text/plain' });

/** A channel file route: /channel/{name}/<file>, answered with an ETag and a short max-age. */
function channelFileRoute(
  file: string,
  summary: string,
  response: { description: string; contentType: string },
  content: (channel: ChannelRow, rc: Parameters<RouteDef['handler']>[1]) => Promise<Buffer | string | ChannelFile>,
): RouteDef {
  return defineRoute<{ name: string }>({
    method: 'GET',
    path: file ? `/channel/{name}/${file}` : '/channel/{name}',
    summary,
    tag: 'channels',
    access: 'public',
    params: nameParams,
    responses: { 200: response, 304: notModified, ...errors },
    handler: async ({ params }, rc) => {
      const channel = await requireChannelNamed(rc.db, params.name);
      const file = await content(channel, rc);
      const { body, etag } = typeof file === 'string' || Buffer.isBuffer(file) ? { body: file, etag: undefined } : file;
      sendCached(rc.koa, { body, etag, contentType: response.contentType === 'text/plain' ? 'text/plain; charset=utf-8' : response.contentType, maxAgeSeconds: CHANNEL_FILE_MAX_AGE_SECONDS });
      return HANDLED;
    },
  });
}

export const channelFileRoutes: RouteDef[] = [
  // nix-channel --update fetches the channel URL itself first (and reads where redirects end), then
  // <that URL>/nixexprs.tar.xz; so the channel's own URL must answer.
  channelFileRoute('', 'The channel itself: what nix-channel --update fetches first (a plain-text description)', text('What the channel follows and where its files are'), async (channel, rc) => {
    const base = `${publicBaseUrl(rc)}/channel/${channel.name}`;
    const source = channel.current_evaluation_id ? await evaluationSource(rc.db, channel.current_evaluation_id) : undefined;
    return [
      `Ringmaster channel ${channel.name}`,
      `evaluation: ${channel.current_evaluation_id ?? 'none promoted yet'}`,
      ...(source ? [`jobset: ${source.project}:${source.jobset}`, `git revision: ${source.commit_hash ?? 'unknown'}`] : []),
      '',
      `subscribe: nix-channel --add ${base} ${channel.name} && nix-channel --update`,
      `files: ${base}/nixexprs.tar.xz ${base}/store-paths.xz ${base}/git-revision ${base}/binary-cache-url`,
      '',
    ].join('\n');
  }),
  channelFileRoute('nixexprs.tar.xz', 'Hydra-compatible nixexprs tarball for this channel', { description: 'The channel\'s Nix expressions (deterministic: the same evaluation gives the same bytes)', contentType: 'application/x-xz' }, (channel, rc) =>
    channelNixexprs(rc.db, currentEvaluationOf(channel)),
  ),
  channelFileRoute('store-paths.xz', 'xz-compressed list of channel store paths', { description: 'The output paths of the evaluation\'s succeeded jobs, sorted, one per line, xz-compressed', contentType: 'application/x-xz' }, (channel, rc) =>
    channelStorePaths(rc.db, currentEvaluationOf(channel)),
  ),
  channelFileRoute('git-revision', 'Plain-text git revision pinned to this channel', text('The git commit of the channel\'s evaluation'), async (channel, rc) => {
    const source = await evaluationSource(rc.db, currentEvaluationOf(channel));
    if (!source?.commit_hash) throw notFound(`git revision of channel ${channel.name} (its evaluation has none)`);
    return source.commit_hash;
  }),
  channelFileRoute('binary-cache-url', 'Plain-text binary cache URL for this channel', text('Where the channel\'s outputs are substituted from'), async (_channel, rc) => binaryCacheUrl(rc)),
];
