import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { invalidField } from './errors';
import { gitEnvironment } from '../lib/git-environment';
import { runProcess } from '../lib/process-runner';

/** A jobset the probe proposes; its fields are those of the jobset create body. */
export interface SuggestedJobset {
  name: string;
  nix_expression: string;
  flake_mode: boolean;
  description: string;
}

export interface RepositoryProbe {
  repository_url: string;
  /** The branch the clone checked out (the remote's default branch unless one was asked for); null for a plain directory. */
  branch: string | null;
  /** The commit probed; null for a plain directory. */
  revision: string | null;
  is_flake: boolean;
  has_hydra_jobs: boolean;
  has_checks: boolean;
  /** Whether `nix` evaluated the flake's outputs (else the flags come from reading flake.nix). */
  flake_evaluated: boolean;
  /** The flake's top-level outputs, when nix could evaluate them. */
  flake_outputs: string[] | null;
  /** The top-level entries of the repository (directories end in "/"). */
  files: string[];
  suggested_jobsets: SuggestedJobset[];
}

const GIT_TIMEOUT_MS = 60_000;
const NIX_TIMEOUT_MS = 30_000;
const MAX_FLAKE_BYTES = 1024 * 1024;
const LEGACY_FILES: Array<{ file: string; name: string; description: string }> = [
  { file: 'release.nix', name: 'release', description: 'The jobs of release.nix' },
  { file: 'ci.nix', name: 'ci', description: 'The jobs of ci.nix' },
  { file: 'default.nix', name: 'default', description: 'The derivations of default.nix' },
];

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command (argument array, no shell) on the process runner: stopped after timeoutMs, output capped. */
async function run(command: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<RunResult> {
  try {
    const r = await runProcess(command, args, { cwd: opts.cwd, env: opts.env, timeoutMs: opts.timeoutMs, maxStdoutBytes: 4 * 1024 * 1024, maxStderrBytes: 64 * 1024, killGraceMs: 1_000 });
    return { code: r.timedOut ? null : r.code, stdout: r.stdout, stderr: r.timedOut ? `${r.stderr}\n${command} did not finish within ${opts.timeoutMs / 1000} s` : r.stderr };
  } catch (err) {
    return { code: null, stdout: '', stderr: (err as Error).message };
  }
}

const gitEnv = (): NodeJS.ProcessEnv => gitEnvironment();

const badUrl = (message: string) => invalidField('body.repository_url', message);

type Source = { kind: 'directory'; dir: string } | { kind: 'git'; url: string };

/** Where the repository is: a local plain directory (read in place), or something git clones. */
function locate(repositoryUrl: string): Source {
  let local: string | undefined;
  if (repositoryUrl.startsWith('file://')) {
    try {
      local = fileURLToPath(repositoryUrl);
    } catch (err) {
      throw badUrl(`is not a valid file URL: ${(err as Error).message}`);
    }
  } else if (repositoryUrl.startsWith('/')) {
    local = repositoryUrl;
  } else if (/^(https?|ssh|git|git\+ssh):\/\/[^\s]+$/.test(repositoryUrl) || /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$/.test(repositoryUrl)) {
    return { kind: 'git', url: repositoryUrl.replace(/^git\+ssh:/, 'ssh:') };
  } else {
    throw badUrl('must be an http(s), ssh, git or file URL, user@host:path, or an absolute path');
  }
  let stat: fs.Stats;
  try {
    stat = fs.statSync(local);
  } catch {
    throw badUrl(`no repository at ${local}`);
  }
  if (!stat.isDirectory()) throw badUrl(`${local} is not a directory`);
  const isWorkTree = fs.existsSync(path.join(local, '.git'));
  const isBare = fs.existsSync(path.join(local, 'HEAD')) && fs.existsSync(path.join(local, 'objects'));
  return isWorkTree || isBare ? { kind: 'git', url: local } : { kind: 'directory', dir: local };
}

async function cloneInto(url: string, branch: string | undefined, target: string): Promise<{ branch: string | null; revision: string | null }> {
  const args = ['-c', 'protocol.ext.allow=never', 'clone', '--quiet', '--depth', '1', '--no-tags'];
  // A local path goes through git's transport too (not hardlinks), so that --depth applies.
  if (url.startsWith('/')) args.push('--no-local');
  if (branch) args.push('--branch', branch);
  // `--` keeps a URL from being read as an option.
  const cloned = await run('git', [...args, '--', url, target], { env: gitEnv(), timeoutMs: GIT_TIMEOUT_MS });
  if (cloned.code !== 0) {
    const reason = cloned.stderr.split('\n').map((l) => l.trim()).filter(Boolean).slice(-2).join(' ') || 'git clone failed';
    throw badUrl(`could not be cloned: ${reason}`);
  }
  const head = await run('git', ['-C', target, 'rev-parse', 'HEAD'], { env: gitEnv(), timeoutMs: GIT_TIMEOUT_MS });
  const ref = await run('git', ['-C', target, 'symbolic-ref', '--short', '-q', 'HEAD'], { env: gitEnv(), timeoutMs: GIT_TIMEOUT_MS });
  return {
    revision: head.code === 0 ? head.stdout.trim() : null,
    branch: ref.code === 0 ? ref.stdout.trim() : branch ?? null,
  };
}

function listTopLevel(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.name !== '.git')
    .map((e) => (e.isDirectory() ? `${e.name}/` : e.name))
    .sort();
}

function readSmallFile(file: string): string | undefined {
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile() || stat.size > MAX_FLAKE_BYTES) return undefined;
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

interface FlakeOutputs {
  outputs: string[];
}

/**
 * The flake's top-level output names, evaluated by nix offline (no substituters, no network): null
 * when nix is missing or cannot evaluate it (e.g. its inputs would need fetching).
 */
async function evaluateFlakeOutputs(flakeRef: string): Promise<FlakeOutputs | null> {
  const expr = 'builtins.attrNames (builtins.getFlake (builtins.getEnv "RINGMASTER_PROBE_FLAKE")).outputs';
  const result = await run(
    'nix',
    ['--extra-experimental-features', 'nix-command flakes', '--option', 'substituters', '', '--offline', 'eval', '--json', '--impure', '--expr', expr],
    { env: { ...process.env, RINGMASTER_PROBE_FLAKE: flakeRef }, timeoutMs: NIX_TIMEOUT_MS },
  );
  if (result.code !== 0) return null;
  try {
    const outputs = JSON.parse(result.stdout) as unknown;
    return Array.isArray(outputs) && outputs.every((o) => typeof o === 'string') ? { outputs } : null;
  } catch {
    return null;
  }
}

/** Whether flake.nix's text defines an output attribute (`name =`, `name.x =`, or `inherit ... name`). */
export function flakeTextMentionsOutput(text: string, name: string): boolean {
  const withoutComments = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])#.*$/gm, '$1');
  return new RegExp(`(^|[^A-Za-z0-9_'-])${name}\\s*(=|\\.)`).test(withoutComments) || new RegExp(`inherit[^;]*\\b${name}\\b[^;]*;`).test(withoutComments);
}

function suggestions(p: Pick<RepositoryProbe, 'is_flake' | 'has_hydra_jobs' | 'has_checks' | 'files' | 'flake_outputs'>): SuggestedJobset[] {
  const out: SuggestedJobset[] = [];
  if (p.has_hydra_jobs) out.push({ name: 'hydra-jobs', nix_expression: 'hydraJobs', flake_mode: true, description: "The flake's hydraJobs" });
  if (p.has_checks) out.push({ name: 'checks', nix_expression: 'checks', flake_mode: true, description: "The flake's checks" });
  if (p.is_flake && out.length === 0 && p.flake_outputs?.includes('packages')) {
    out.push({ name: 'packages', nix_expression: 'packages', flake_mode: true, description: "The flake's packages" });
  }
  const legacy = LEGACY_FILES.filter((l) => p.files.includes(l.file));
  // default.nix beside release.nix or ci.nix is usually the package, not the jobs.
  const chosen = legacy.length > 1 ? legacy.filter((l) => l.file !== 'default.nix') : legacy;
  for (const l of chosen) out.push({ name: l.name, nix_expression: l.file, flake_mode: false, description: l.description });
  return out;
}

/**
 * Looks at a repository and proposes jobsets: a flake's hydraJobs and checks, or release.nix /
 * ci.nix / default.nix for legacy evaluation. Git repositories (remote or local) are cloned shallowly
 * into a temporary directory that is always removed; a local plain directory is read in place.
 * An unreachable or missing repository is a 400 naming body.repository_url.
 */
export async function probeRepository(repositoryUrl: string, opts: { branch?: string } = {}): Promise<RepositoryProbe> {
  const source = locate(repositoryUrl);
  let tempDir: string | undefined;
  try {
    let dir: string;
    let branch: string | null = null;
    let revision: string | null = null;
    let flakeRef: string;
    if (source.kind === 'git') {
      tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-probe-'));
      dir = path.join(tempDir, 'repo');
      ({ branch, revision } = await cloneInto(source.url, opts.branch, dir));
      // The clone is shallow; nix refuses a shallow repository unless told.
      flakeRef = `git+file://${dir}?shallow=1`;
    } else {
      if (opts.branch) throw invalidField('body.branch', 'a plain directory has no branches');
      dir = source.dir;
      flakeRef = `path:${dir}`;
    }
    const files = listTopLevel(dir);
    const flakeText = files.includes('flake.nix') ? readSmallFile(path.join(dir, 'flake.nix')) : undefined;
    const isFlake = flakeText !== undefined;
    const evaluated = isFlake ? await evaluateFlakeOutputs(flakeRef) : null;
    const has = (output: string) => (evaluated ? evaluated.outputs.includes(output) : isFlake && flakeTextMentionsOutput(flakeText!, output));
    const probe = {
      repository_url: repositoryUrl,
      branch,
      revision,
      is_flake: isFlake,
      has_hydra_jobs: has('hydraJobs'),
      has_checks: has('checks'),
      flake_evaluated: evaluated !== null,
      flake_outputs: evaluated?.outputs ?? null,
      files,
    };
    return { ...probe, suggested_jobsets: suggestions(probe) };
  } finally {
    if (tempDir) fs.rmSync(tempDir, { recursive: true, force: true });
  }
}
