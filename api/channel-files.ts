import type { Db } from '../lib/db';
import { ApiError, notFound } from './errors';
import { channelExpression } from './channel-expression';
import { deterministicTar, xzCompress, type TarFile } from './deterministic-tar';
import { channelJobs, evaluationSource, type ChannelRow } from './queries/channels';
import { CompressedCache } from './compressed-cache';

/** Compressed channel files of this process, by content: 64 MiB holds many evaluations' tarballs. */
const compressed = new CompressedCache(64 * 1024 * 1024);

/** The top directory of nixexprs.tar.xz; nix-channel renames it to the channel's local name. */
const TOP_DIRECTORY = 'channel';

/** The channel's current evaluation, or a 404 saying that nothing was promoted yet. */
export function currentEvaluationOf(channel: ChannelRow): string {
  if (!channel.current_evaluation_id) throw new ApiError('NOT_FOUND', `channel ${channel.name} has no evaluation yet: nothing was promoted to it`);
  return channel.current_evaluation_id;
}

/**
 * nixexprs.tar.xz of an evaluation: `channel/default.nix` (the jobs, see channel-expression.ts) and,
 * when the evaluation has one, `channel/.git-revision`. The same evaluation always gives the same bytes.
 */
export async function channelNixexprs(db: Db, evaluationId: string): Promise<Buffer> {
  const source = await evaluationSource(db, evaluationId);
  if (!source) throw notFound('evaluation', evaluationId);
  const jobs = await channelJobs(db, evaluationId);
  const files: TarFile[] = [
    { path: 'default.nix', content: channelExpression({ project: source.project, jobset: source.jobset, evaluationId, gitRevision: source.commit_hash }, jobs) },
  ];
  if (source.commit_hash) files.push({ path: '.git-revision', content: source.commit_hash });
  return compressed.get(await deterministicTar(TOP_DIRECTORY, files), xzCompress);
}

/** store-paths.xz: every output path of the evaluation's succeeded jobs, sorted, one per line. */
export async function channelStorePaths(db: Db, evaluationId: string): Promise<Buffer> {
  const paths = new Set<string>();
  for (const job of await channelJobs(db, evaluationId)) for (const p of Object.values(job.outputs)) paths.add(p);
  const sorted = [...paths].sort();
  return compressed.get(sorted.map((p) => `${p}\n`).join(''), xzCompress);
}
