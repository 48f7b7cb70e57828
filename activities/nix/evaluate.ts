import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { readDerivationSync } from './drv';
import { commandOnPath, nixEnv, runNix } from './nix-env';
import { signalProcessGroup } from '../../lib/process-runner';
import { setSessionNice } from '../../lib/process-priority';

/** An evaluation argument: `--argstr name value`, or `--arg name <nix expression>`. */
export interface NixArg { name: string; kind: 'argstr' | 'arg'; value: string }

export interface EvalJobMeta {
  description?: string;
  license?: string;
  homepage?: string;
  maintainers?: string;
  schedulingPriority?: number;
  timeout?: number;
  maxSilent?: number;
}

export interface EvalJob {
  kind: 'job';
  /** The dotted attribute path of the job (`tools.x`). */
  attr: string;
  drvPath: string;
  system: string;
  outputs: Record<string, string>;
  meta: EvalJobMeta;
  isAggregate: boolean;
  /** For an aggregate: the attribute names of its constituent jobs. */
  constituents: string[];
  requiredSystemFeatures: string[];
  /** The .drv paths this job's derivation depends on directly. */
  inputDrvs: string[];
  isFod: boolean;
}

/** A job (or, with attr '' = EVAL_TOP_LEVEL, the whole evaluation) that failed to evaluate. */
export interface EvalJobError { kind: 'error'; attr: string; error: string }

export interface EvaluateJobsOptions {
  /** The checked-out source: the directory holding the expression or flake.nix. */
  sourceDir: string;
  flakeMode: boolean;
  /** Legacy: the .nix file, relative to sourceDir. Flake: the dotted attribute (default hydraJobs, else checks.<system>). */
  expression: string;
  args: NixArg[];
  signal?: AbortSignal;
  /** Sets builtins.currentSystem (`--option system`). */
  system?: string;
  /**
   * The nice value of the evaluator's Nix (its session's autogroup, lib/process-priority.ts); unset or 0:
   * as this process. The evaluator is an evaluation's critical path: the writes that follow it can wait.
   */
  nice?: number;
  /** Told, for each Nix process it starts, when `nice` could not be applied (e.g. no CAP_SYS_NICE for a negative value). */
  onNiceRefused?: (reason: string) => void;
}

/** The attr of the EvalJobError that reports a failure of the whole evaluation. */
export const EVAL_TOP_LEVEL = '';

/** How many catchable (throw/assert) failures get their message by a second, single-job evaluation. */
const EXPLAINED_ERRORS_LIMIT = 50;
/** How many times the walker restarts after an uncatchable error before the evaluation is given up. */
const WALKER_RESTART_LIMIT = 100;
/** Lines of Nix's own output kept to build an error message. */
const ERROR_CONTEXT_LINES = 200;

const WALKER_FILE = path.join(__dirname, 'walker.nix');
const FLAKE_FEATURES = ['--extra-experimental-features', 'nix-command flakes'];

/**
 * Evaluates a jobset and yields each job (or per-job error) as soon as Nix produces it.
 * Uses nix-eval-jobs when it is installed, else a walker over nix-instantiate.
 * Aggregates are yielded at the end, once every constituent's attribute name is known.
 */
export async function* evaluateJobs(opts: EvaluateJobsOptions): AsyncGenerator<EvalJob | EvalJobError> {
  validateArgs(opts.args);
  if (await commandOnPath('nix-eval-jobs')) yield* evaluateWithNixEvalJobs(opts);
  else yield* evaluateWithWalker(opts);
}

function validateArgs(args: NixArg[]) {
  for (const arg of args) {
    if (!/^[A-Za-z_][A-Za-z0-9_'-]*$/.test(arg.name)) throw new Error(`invalid evaluation argument name ${JSON.stringify(arg.name)}`);
    if (arg.name === 'ringmasterWalker') throw new Error('the evaluation argument name ringmasterWalker is reserved');
  }
}

function argFlags(args: NixArg[]): string[] {
  return args.flatMap((arg) => [arg.kind === 'arg' ? '--arg' : '--argstr', arg.name, arg.value]);
}

function flakeRef(sourceDir: string): string {
  return `path:${path.resolve(sourceDir).replace(/[%#?]/g, (ch) => encodeURIComponent(ch))}`;
}

/** The first two flags differ per mode; the rest is shared by every nix-instantiate run of the walker. */
function walkerCommand(opts: EvaluateJobsOptions, mode: { resumeAfter: string[] | null; explain: string[] | null }): string[] {
  const config = {
    flakeMode: opts.flakeMode,
    file: opts.flakeMode ? null : path.resolve(opts.sourceDir, opts.expression),
    flakeRef: opts.flakeMode ? flakeRef(opts.sourceDir) : null,
    attrPath: opts.flakeMode && opts.expression.trim() !== '' ? opts.expression.split('.') : [],
    resumeAfter: mode.resumeAfter,
    explain: mode.explain,
  };
  return [
    '--eval', '--strict', '--json', '--read-write-mode',
    ...(opts.flakeMode ? FLAKE_FEATURES : []),
    ...(opts.system ? ['--option', 'system', opts.system] : []),
    WALKER_FILE,
    '--argstr', 'ringmasterWalker', JSON.stringify(config),
    ...argFlags(opts.args),
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// The built-in walker

interface ConstituentRef { drvPath?: string; name?: string }

/** A job as the walker (or nix-eval-jobs) reports it, before its .drv is read. */
interface ReportedJob {
  attr: string;
  drvPath: string;
  system: string;
  outputs: Record<string, string>;
  meta: EvalJobMeta;
  isAggregate: boolean;
  constituents: ConstituentRef[];
}

const MARKER = 'trace: @ringmaster:';

async function* evaluateWithWalker(opts: EvaluateJobsOptions): AsyncGenerator<EvalJob | EvalJobError> {
  const assembler = new JobAssembler();
  const toExplain: string[] = [];
  let resumeAfter: string[] | null = null;

  for (let restarts = 0; ; restarts++) {
    const child = spawnNix('nix-instantiate', walkerCommand(opts, { resumeAfter, explain: null }), opts);
    const exited = exitOf(child);
    let lastBegun: string[] | null = null;
    const context: string[] = [];
    try {
      for await (const line of linesOf(child.stderr!)) {
        // Output Nix wrote before an abort is not drained: an aborted evaluation stops at once.
        if (opts.signal?.aborted) throw new Error('the evaluation was aborted');
        if (!line.startsWith(MARKER)) {
          if (context.length >= ERROR_CONTEXT_LINES) context.shift();
          context.push(line);
          continue;
        }
        const kind = line[MARKER.length];
        const payload = line.slice(MARKER.length + 2);
        if (kind === 'B') {
          lastBegun = payload === '' ? [] : payload.split('.');
          context.length = 0;
        } else if (kind === 'J') {
          const job = await assembler.accept(JSON.parse(payload) as ReportedJob);
          if (job) yield job;
        } else if (kind === 'E') {
          const failure = JSON.parse(payload) as { attr: string; message: string | null };
          if (failure.message !== null) yield { kind: 'error', attr: failure.attr, error: failure.message };
          else if (toExplain.length < EXPLAINED_ERRORS_LIMIT) toExplain.push(failure.attr);
          else yield { kind: 'error', attr: failure.attr, error: 'evaluation failed (a throw or a failed assertion)' };
        }
      }
      const code = await exited;
      if (opts.signal?.aborted) throw new Error('the evaluation was aborted');
      if (code === 0) break;

      const message = errorMessage(context) || `nix-instantiate exited with code ${code}`;
      if (lastBegun === null || lastBegun.length === 0) {
        yield { kind: 'error', attr: EVAL_TOP_LEVEL, error: message };
        break;
      }
      yield { kind: 'error', attr: lastBegun.join('.'), error: message };
      if (restarts >= WALKER_RESTART_LIMIT) {
        yield { kind: 'error', attr: EVAL_TOP_LEVEL, error: `the evaluation stopped after ${restarts + 1} errors that could not be caught` };
        break;
      }
      resumeAfter = lastBegun;
    } finally {
      stopChild(child);
    }
  }

  for (const attr of toExplain) {
    if (opts.signal?.aborted) throw new Error('the evaluation was aborted');
    yield { kind: 'error', attr, error: await explainFailure(opts, attr) };
  }
  yield* assembler.finish();
}

/** Evaluates one failed node again, without tryEval, to get the message Nix prints for it. */
async function explainFailure(opts: EvaluateJobsOptions, attr: string): Promise<string> {
  const explain = attr === '' ? [] : attr.split('.');
  const result = await runNix('nix-instantiate', walkerCommand(opts, { resumeAfter: null, explain }), {
    cwd: opts.sourceDir,
    signal: opts.signal,
  });
  const lines = result.stderr.split('\n').filter((line) => !line.startsWith('trace: '));
  return errorMessage(lines) || 'evaluation failed (a throw or a failed assertion)';
}

/** Nix's error text from its stderr lines: from the first `error:` on, without colours or the --show-trace hint. */
export function errorMessage(lines: string[]): string {
  // eslint-disable-next-line no-control-regex
  const clean = lines.map((line) => line.replace(/\x1b\[[0-9;]*m/g, ''));
  const start = clean.findIndex((line) => line.startsWith('error:'));
  const relevant = start >= 0 ? clean.slice(start) : clean;
  return relevant
    .filter((line) => !line.includes("use '--show-trace' to show detailed location information"))
    .join('\n')
    .trim();
}

// ---------------------------------------------------------------------------------------------------------------
// nix-eval-jobs, when it is installed

interface NixEvalJobsLine {
  attr?: string;
  attrPath?: string[];
  drvPath?: string;
  system?: string;
  outputs?: Record<string, string | null>;
  meta?: Record<string, unknown>;
  error?: string;
  constituents?: string[];
  namedConstituents?: string[];
}

async function* evaluateWithNixEvalJobs(opts: EvaluateJobsOptions): AsyncGenerator<EvalJob | EvalJobError> {
  const help = await runNix('nix-eval-jobs', ['--help'], { signal: opts.signal });
  const supports = (flag: string) => help.stdout.includes(flag) || help.stderr.includes(flag);
  const gcRoots = await mkdtemp(path.join(os.tmpdir(), 'ringmaster-eval-roots-'));
  const target = opts.flakeMode
    ? ['--flake', `${flakeRef(opts.sourceDir)}#${opts.expression.trim() || 'hydraJobs'}`]
    : [path.resolve(opts.sourceDir, opts.expression)];
  const args = [
    '--gc-roots-dir', gcRoots, '--workers', '1',
    ...['--meta', '--force-recurse', '--constituents'].filter(supports),
    ...(opts.system ? ['--option', 'system', opts.system] : []),
    ...target,
    ...argFlags(opts.args),
  ];
  const assembler = new JobAssembler();
  const child = spawnNix('nix-eval-jobs', args, opts);
  const exited = exitOf(child);
  const context: string[] = [];
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    context.push(...chunk.split('\n'));
    if (context.length > ERROR_CONTEXT_LINES) context.splice(0, context.length - ERROR_CONTEXT_LINES);
  });
  try {
    for await (const line of linesOf(child.stdout!)) {
      if (opts.signal?.aborted) throw new Error('the evaluation was aborted');
      if (line.trim() === '') continue;
      const reported = JSON.parse(line) as NixEvalJobsLine;
      const attr = reported.attrPath ? reported.attrPath.join('.') : reported.attr ?? '';
      if (reported.error !== undefined || !reported.drvPath) {
        yield { kind: 'error', attr, error: reported.error ?? 'no derivation' };
        continue;
      }
      const named = reported.namedConstituents ?? [];
      const byPath = reported.constituents ?? [];
      const job = await assembler.accept({
        attr,
        drvPath: reported.drvPath,
        system: reported.system ?? '',
        outputs: Object.fromEntries(Object.entries(reported.outputs ?? {}).map(([name, out]) => [name, out ?? ''])),
        meta: flattenMeta(reported.meta ?? {}),
        isAggregate: named.length > 0 || byPath.length > 0 || reported.meta?._hydraAggregate === true,
        constituents: [...byPath.map((drvPath) => ({ drvPath })), ...named.map((name) => ({ name }))],
      });
      if (job) yield job;
    }
    const code = await exited;
    if (opts.signal?.aborted) throw new Error('the evaluation was aborted');
    if (code !== 0) yield { kind: 'error', attr: EVAL_TOP_LEVEL, error: errorMessage(context) || `nix-eval-jobs exited with code ${code}` };
    yield* assembler.finish();
  } finally {
    stopChild(child);
    await rm(gcRoots, { recursive: true, force: true });
  }
}

/** Flattens a full meta attribute set (as nix-eval-jobs --meta prints it) the way Hydra does. */
export function flattenMeta(meta: Record<string, unknown>): EvalJobMeta {
  const strings = (value: unknown, fields: string[]): string[] => {
    if (typeof value === 'string') return [value];
    if (Array.isArray(value)) return value.flatMap((item) => strings(item, fields));
    if (value !== null && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      const field = fields.find((f) => typeof record[f] === 'string');
      return field ? [record[field] as string] : [];
    }
    return [];
  };
  const out: EvalJobMeta = {};
  if (typeof meta.description === 'string') out.description = meta.description;
  if (typeof meta.homepage === 'string') out.homepage = meta.homepage;
  if (meta.license !== undefined) out.license = strings(meta.license, ['spdxId', 'shortName', 'fullName']).join(', ');
  if (meta.maintainers !== undefined) out.maintainers = strings(meta.maintainers, ['email', 'name', 'github']).join(', ');
  for (const key of ['schedulingPriority', 'timeout', 'maxSilent'] as const) {
    const value = meta[key];
    if (typeof value === 'number' && Number.isInteger(value)) out[key] = value;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Shared plumbing

/**
 * Completes reported jobs with what their .drv says and resolves aggregates' constituents to job names.
 * It keeps only a drvPath → attr index and the set of names (small strings), plus the aggregates until the end.
 */
class JobAssembler {
  private readonly attrByDrvPath = new Map<string, string>();
  private readonly jobNames = new Set<string>();
  private readonly heldAggregates: Array<{ job: EvalJob; refs: ConstituentRef[] }> = [];

  async accept(reported: ReportedJob): Promise<EvalJob | EvalJobError | null> {
    let drv;
    try {
      // Read synchronously: the output reader waits on no thread pool between two lines of Nix's output.
      drv = readDerivationSync(reported.drvPath);
    } catch (err) {
      return { kind: 'error', attr: reported.attr, error: `cannot read ${reported.drvPath}: ${(err as Error).message}` };
    }
    const job: EvalJob = {
      kind: 'job',
      attr: reported.attr,
      drvPath: reported.drvPath,
      system: reported.system || drv.system,
      outputs: reported.outputs,
      meta: reported.meta,
      isAggregate: reported.isAggregate,
      constituents: [],
      requiredSystemFeatures: drv.requiredSystemFeatures,
      inputDrvs: drv.inputDrvs,
      isFod: drv.isFod,
    };
    if (!this.attrByDrvPath.has(job.drvPath)) this.attrByDrvPath.set(job.drvPath, job.attr);
    this.jobNames.add(job.attr);
    if (job.isAggregate) {
      this.heldAggregates.push({ job, refs: reported.constituents });
      return null;
    }
    return job;
  }

  /**
   * The held aggregates, with constituents as job names. A derivation that is no job is left out (as Hydra did);
   * a name that is no job makes the aggregate an error.
   */
  *finish(): Generator<EvalJob | EvalJobError> {
    for (const { job, refs } of this.heldAggregates) {
      const names: string[] = [];
      const missing: string[] = [];
      for (const ref of refs) {
        if (ref.name !== undefined) {
          if (this.jobNames.has(ref.name)) names.push(ref.name);
          else missing.push(ref.name);
        } else if (ref.drvPath !== undefined) {
          const name = this.attrByDrvPath.get(ref.drvPath);
          if (name !== undefined && name !== job.attr) names.push(name);
        }
      }
      if (missing.length > 0) {
        yield { kind: 'error', attr: job.attr, error: `aggregate job ${job.attr} names constituents that are not jobs: ${missing.join(', ')}` };
      } else {
        yield { ...job, constituents: [...new Set(names)] };
      }
    }
    this.heldAggregates.length = 0;
  }
}

function spawnNix(command: string, args: string[], opts: EvaluateJobsOptions): ChildProcess {
  if (opts.signal?.aborted) throw new Error('the evaluation was aborted');
  // Its own process group: stopping it stops nix-eval-jobs' worker processes too.
  const child = spawn(command, args, { cwd: opts.sourceDir, env: nixEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  // Its own session (detached) is its own autogroup: the nice value counts against every other process.
  if (opts.nice && child.pid !== undefined) {
    const result = setSessionNice(child.pid, opts.nice);
    if (!result.applied) opts.onNiceRefused?.(result.error ?? 'not applied');
  }
  const onAbort = () => stopChild(child);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  child.once('close', () => opts.signal?.removeEventListener('abort', onAbort));
  return child;
}

/** Resolves with the exit code once the process has exited and its pipes are closed; rejects if it cannot start. */
function exitOf(child: ChildProcess): Promise<number> {
  const exited = new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
  // A consumer that stops early never awaits this; the failure it would report is then of no interest.
  exited.catch(() => undefined);
  return exited;
}

function stopChild(child: ChildProcess) {
  if (child.exitCode === null && child.signalCode === null) signalProcessGroup(child, 'SIGTERM');
}

/**
 * The lines of a stream, read only as fast as they are consumed: the stream's own async iterator pauses the
 * pipe, so a slow consumer makes Nix wait instead of making this process buffer.
 */
async function* linesOf(stream: Readable): AsyncGenerator<string> {
  stream.setEncoding('utf8');
  let rest = '';
  for await (const chunk of stream as AsyncIterable<string>) {
    const text = rest + chunk;
    let start = 0;
    for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n', start)) {
      yield text.slice(start, end);
      start = end + 1;
    }
    rest = text.slice(start);
  }
  if (rest !== '') yield rest;
}
