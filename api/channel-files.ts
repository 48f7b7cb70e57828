import type { Db } from '../lib/db';
import { ApiError, notFound } from './errors';
import { channelExpression } from './channel-expression';
import { deterministicTar, xzCompress, type TarFile } from './deterministic-tar';
import { channelJobs, evaluationResultsVersion, evaluationSource, type ChannelRow } from './queries/channels';
import { ChannelFileCache, type ChannelFile } from './channel-file-cache';

/** Generated channel files of this process: 64 MiB holds many evaluations' tarballs. */
const cache = new ChannelFileCache(64 * 1024 * 1024);

/** The top directory of nixexprs.tar.xz; nix-channel renames it to the channel's local name. */
const TOP_DIRECTORY = 'channel';

/** The channel's current evaluation, or a 404 saying that nothing was promoted yet. */
export function currentEvaluationOf(channel: ChannelRow): string {
  if (!channel.current_evaluation_id) throw new ApiError('NOT_FOUND', `channel ${channel.name} has no evaluation yet: nothing was promoted to it`);
  return channel.current_evaluation_id;
}

type Source = NonNullable<Awaited<ReturnType<typeof evaluationSource>>>;

/** A file of the evaluation, generated once per version of its results (and of its source's names). */
async function cachedFile(db: Db, kind: string, evaluationId: string, generate: (source: Source) => Promise<Buffer>): Promise<ChannelFile> {
  const source = await evaluationSource(db, evaluationId);
  if (!source) throw notFound('evaluation', evaluationId);
  const version = await evaluationResultsVersion(db, evaluationId);
  const key = JSON.stringify([kind, evaluationId, source.project, source.jobset, source.commit_hash, version]);
  return cache.get(key, () => generate(source));
}

/**
 * nixexprs.tar.xz of an evaluation: `channel/default.nix` (the jobs, see channel-expression.ts) and,
 * when the evaluation has one, `channel/.git-revision`. The same evaluation always gives the same bytes.
 */
export async function channelNixexprs(db: Db, evaluationId: string): Promise<ChannelFile> {
  return cachedFile(db, 'nixexprs.tar.xz', evaluationId, async (source) => {
    const jobs = await channelJobs(db, evaluationId);
    const files: TarFile[] = [
      { path: 'default.nix', content: channelExpression({ project: source.project, jobset: source.jobset, evaluationId, gitRevision: source.commit_hash }, jobs) },
    ];
    if (source.commit_hash) files.push({ path: '.git-revision', content: source.commit_hash });
    return xzCompress(await deterministicTar(TOP_DIRECTORY, files));
  });
}

/** store-paths.xz: every output path of the evaluation's succeeded jobs, sorted, one per line. */
export async function channelStorePaths(db: Db, evaluationId: string): Promise<ChannelFile> {
  return cachedFile(db, 'store-paths.xz', evaluationId, async () => {
    const paths = new Set<string>();
    for (const job of await channelJobs(db, evaluationId)) for (const p of Object.values(job.outputs)) paths.add(p);
    return xzCompress([...paths].sort().map((p) => `${p}\n`).join(''));
  });
}
