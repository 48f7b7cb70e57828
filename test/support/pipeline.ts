import crypto from 'node:crypto';
import path from 'node:path';
import type { TestStack } from './stack';

export const JOBSET_FIXTURE = path.resolve(__dirname, '..', 'fixtures', 'jobset');
const FINISHED = new Set(['succeeded', 'failed', 'dependency_failed', 'aborted', 'cancelled', 'failed_with_output', 'timeout', 'cached_failure', 'unsupported_system', 'log_limit_exceeded']);

export function nonce(): string {
  return crypto.randomBytes(6).toString('hex');
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it returns a value (not undefined), or fails after timeoutMs naming `what`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 120_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}

export interface CreatedJobset {
  projectId: string;
  jobsetId: string;
}

/** Creates a project on `repositoryUrl` and a legacy jobset on `expression`, with string inputs. */
export async function createJobset(stack: TestStack, repositoryUrl: string, opts: { expression?: string; inputs?: Record<string, string>; name?: string; flake?: boolean } = {}): Promise<CreatedJobset> {
  const name = opts.name ?? `p-${nonce()}`;
  const project = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body: { name, repository_url: repositoryUrl } });
  if (project.status !== 200) throw new Error(`project: ${project.status} ${project.text}`);
  const jobset = await stack.request('POST', `/api/v1/projects/${project.body.id}/jobsets`, {
    key: stack.adminKey,
    body: { name: 'main', nix_expression: opts.expression ?? (opts.flake ? 'hydraJobs' : 'release.nix'), flake_mode: opts.flake ?? false, check_interval: 0 },
  });
  if (jobset.status !== 200) throw new Error(`jobset: ${jobset.status} ${jobset.text}`);
  for (const [k, v] of Object.entries(opts.inputs ?? {})) {
    const input = await stack.request('POST', `/api/v1/projects/${project.body.id}/jobsets/${jobset.body.id}/inputs`, { key: stack.adminKey, body: { name: k, input_type: 'string', value: v } });
    if (input.status !== 200) throw new Error(`input: ${input.status} ${input.text}`);
  }
  return { projectId: project.body.id, jobsetId: jobset.body.id };
}

export async function trigger(stack: TestStack, jobsetId: string, commitHash?: string): Promise<{ id: string; status: string; created: boolean; commit_hash: string | null }> {
  const res = await stack.request('POST', '/api/v1/evaluations/trigger', { key: stack.adminKey, body: commitHash ? { jobset_id: jobsetId, commit_hash: commitHash } : { jobset_id: jobsetId } });
  if (res.status !== 202) throw new Error(`trigger: ${res.status} ${res.text}`);
  return res.body;
}

export async function waitForEvaluation(stack: TestStack, evaluationId: string, timeoutMs = 120_000, everyMs = 250): Promise<Record<string, any>> {
  return eventually(`evaluation ${evaluationId}`, async () => {
    const row = await stack.db('evaluations').where({ id: evaluationId }).first();
    return row && !['pending', 'running'].includes(row.status) ? row : undefined;
  }, timeoutMs, everyMs);
}

export async function buildsOf(stack: TestStack, evaluationId: string): Promise<Record<string, Record<string, any>>> {
  const rows = await stack.db('builds').where({ evaluation_id: evaluationId });
  return Object.fromEntries(rows.map((r) => [r.job_name, r]));
}

/**
 * Waits until every build of the evaluation (except those named) has finished and has its workflow
 * started: a batch records the result of a build whose workflow has not started yet (issue 6), and that
 * workflow starts a moment later (its `build_workflow_starts` row goes once it has).
 */
/**
 * Waits until every build of the evaluation (but `except`'s jobs) has finished and has had its workflow
 * started; answers them by job name. Each look is two small queries (a few unfinished builds, and
 * whether a start row is left) until both say none: a benchmark may look often (`everyMs`) without
 * reading every build each time.
 */
export async function waitForBuilds(stack: TestStack, evaluationId: string, opts: { except?: string[]; timeoutMs?: number; everyMs?: number } = {}): Promise<Record<string, Record<string, any>>> {
  const except = opts.except ?? [];
  return eventually(`builds of evaluation ${evaluationId}`, async () => {
    const unfinished = await stack.db('builds').where({ evaluation_id: evaluationId }).whereNotIn('job_name', except).whereNotIn('status', [...FINISHED]).limit(20).select('job_name', 'status');
    if (unfinished.length > 0) throw new Error(`still open: ${unfinished.map((b) => `${b.job_name} (${b.status})`).join(', ')}${unfinished.length === 20 ? ', …' : ''}`);
    const unstarted = await stack.db('build_workflow_starts as s').join('builds as b', 'b.id', 's.build_id').where('s.evaluation_id', evaluationId).whereNotIn('b.job_name', except).first('s.build_id');
    if (unstarted) throw new Error('finished, workflow not started yet');
    const builds = await buildsOf(stack, evaluationId);
    const waited = Object.values(builds).filter((b) => !except.includes(b.job_name));
    const open = waited.filter((b) => !FINISHED.has(b.status));
    if (open.length > 0) throw new Error(`still open: ${open.map((b) => `${b.job_name} (${b.status})`).join(', ')}`);
    return Object.keys(builds).length > 0 ? builds : undefined;
  }, opts.timeoutMs ?? 240_000, opts.everyMs ?? 400);
}

export function isFinished(status: string): boolean {
  return FINISHED.has(status);
}
