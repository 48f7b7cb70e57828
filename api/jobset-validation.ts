import { runProcess } from '../lib/process-runner';
import { ApiError, invalidField, type FieldError } from './errors';
import type { InputType, JobsetFields } from './queries/jobsets';

/**
 * Checks on jobset and jobset-input values that a JSON schema cannot express. Each returns the failing
 * fields (named as the request names them, e.g. `body.jobsets.0.nix_expression`), or none.
 */

const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/** A git ref name as `git check-ref-format --branch` would take it (the common rules). */
export function isGitRefName(ref: string): boolean {
  if (ref.length === 0 || ref.length > 255) return false;
  if (CONTROL_CHARS.test(ref) || /[\s~^:?*[\\]/.test(ref)) return false;
  if (ref.startsWith('-') || ref.startsWith('/') || ref.endsWith('/') || ref.endsWith('.') || ref.endsWith('.lock')) return false;
  if (ref.includes('..') || ref.includes('//') || ref.includes('@{') || ref === '@') return false;
  return !ref.split('/').some((part) => part.startsWith('.'));
}

/** Why a legacy-mode `nix_expression` is not a relative path inside the repository, or undefined. */
export function repositoryPathProblem(path: string): string | undefined {
  if (CONTROL_CHARS.test(path)) return 'must not contain control characters';
  if (path.startsWith('/') || path.startsWith('~')) return 'must be a path relative to the repository root (e.g. release.nix), not an absolute path';
  if (path.split('/').some((segment) => segment === '..')) return 'must stay inside the repository: ".." is not allowed';
  if (path.endsWith('/')) return 'must name a Nix file, not a directory';
  return undefined;
}

/** The jobset as it will be stored: `fields` over `current` (for updates). */
export function jobsetFieldProblems(fields: JobsetFields, current: JobsetFields | undefined, prefix = 'body'): FieldError[] {
  const problems: FieldError[] = [];
  const flakeMode = fields.flake_mode ?? current?.flake_mode ?? false;
  const expression = fields.nix_expression ?? current?.nix_expression;
  // A change of mode re-checks the stored expression, so name the field that makes it wrong.
  const expressionField = fields.nix_expression !== undefined ? `${prefix}.nix_expression` : `${prefix}.flake_mode`;
  if (expression !== undefined) {
    if (expression.trim() === '') {
      problems.push({ field: `${prefix}.nix_expression`, message: 'must not be empty' });
    } else if (flakeMode) {
      if (/\s/.test(expression) || CONTROL_CHARS.test(expression)) {
        problems.push({ field: expressionField, message: 'in flake mode must be a flake attribute such as hydraJobs or checks (no whitespace)' });
      }
    } else {
      const problem = repositoryPathProblem(expression);
      if (problem) problems.push({ field: expressionField, message: problem });
    }
  }
  if (fields.branch !== undefined && fields.branch !== null && !isGitRefName(fields.branch)) {
    problems.push({ field: `${prefix}.branch`, message: 'must be a valid git branch name' });
  }
  for (const key of ['branch_pattern', 'tag_pattern'] as const) {
    const pattern = fields[key];
    if (typeof pattern === 'string' && CONTROL_CHARS.test(pattern)) problems.push({ field: `${prefix}.${key}`, message: 'must not contain control characters' });
  }
  return problems;
}

export function throwIfProblems(problems: FieldError[]): void {
  if (problems.length === 0) return;
  const first = problems[0];
  throw new ApiError('VALIDATION_ERROR', `invalid ${first.field}: ${first.message}`, problems);
}

const NIX_KEYWORDS = new Set(['if', 'then', 'else', 'assert', 'with', 'let', 'in', 'rec', 'inherit', 'or']);

/** A name a Nix function can take as an argument: the input is passed to the jobset's expression by it. */
export function isNixIdentifier(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_'-]*$/.test(name) && !NIX_KEYWORDS.has(name);
}

const URL_SCHEMES = /^(https?|ssh|git|file|git\+ssh|git\+https?):\/\/[^\s]+$/;
const SCP_LIKE = /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const JOB_REF = /^[A-Za-z0-9_][A-Za-z0-9._-]*:[A-Za-z0-9_][A-Za-z0-9._-]*:[^\s:]+$/;

/** Checks a Nix expression's syntax with `nix-instantiate --parse` (nothing is evaluated). */
export async function nixParseProblem(expression: string, timeoutMs = 10_000): Promise<string | undefined> {
  let r;
  try {
    r = await runProcess('nix-instantiate', ['--parse', '-E', expression], {
      env: { ...process.env, NIX_CONFIG: `${process.env.NIX_CONFIG ?? ''}\nsubstituters =` },
      timeoutMs,
      killGraceMs: 0,
      maxStdoutBytes: 0,
      maxStderrBytes: 4096,
    });
  } catch (err) {
    // Without nix-instantiate the syntax cannot be checked here; the evaluation will report it.
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : (err as Error).message;
  }
  if (r.code === 0) return undefined;
  if (r.timedOut) return 'could not be parsed in time';
  const message = r.stderr.replace(/\u001b\[[0-9;]*m/g, '').split('\n').find((l) => l.startsWith('error:')) ?? 'is not a valid Nix expression';
  return message.replace(/^error:\s*/, '').trim();
}

/** The value checks for a jobset input of each type. Throws a 400 naming the field. */
export async function checkJobsetInput(input: { name: string; input_type: InputType; value: string; revision?: string | null }): Promise<void> {
  if (!isNixIdentifier(input.name)) {
    throw invalidField('body.name', 'must be a Nix identifier (a letter or _, then letters, digits, _, \' or -; not a keyword)');
  }
  if (input.revision !== undefined && input.revision !== null && input.input_type !== 'git') {
    throw invalidField('body.revision', 'is only meaningful for git inputs');
  }
  const value = input.value;
  switch (input.input_type) {
    case 'boolean':
      if (value !== 'true' && value !== 'false') throw invalidField('body.value', 'a boolean input must be "true" or "false"');
      return;
    case 'string':
      if (CONTROL_CHARS.test(value.replace(/[\n\t]/g, ''))) throw invalidField('body.value', 'must not contain control characters');
      return;
    case 'git':
      if (!(URL_SCHEMES.test(value) || SCP_LIKE.test(value) || /^\/[^\s]*$/.test(value))) {
        throw invalidField('body.value', 'a git input must be a repository URL (https://, ssh://, git://, file://, user@host:path) or an absolute path');
      }
      if (input.revision !== undefined && input.revision !== null && !(/^[0-9a-f]{7,64}$/i.test(input.revision) || isGitRefName(input.revision))) {
        throw invalidField('body.revision', 'must be a commit hash or a git ref name');
      }
      return;
    case 'path':
      if (!(/^\/[^\u0000]*$/.test(value) || /^(https?|file):\/\/[^\s]+$/.test(value)) || CONTROL_CHARS.test(value)) {
        throw invalidField('body.value', 'a path input must be an absolute path or an http(s)/file URL');
      }
      return;
    case 'build':
      if (!(UUID.test(value) || JOB_REF.test(value))) {
        throw invalidField('body.value', 'a build input must be a build id or "project:jobset:job"');
      }
      return;
    case 'nix': {
      if (value.trim() === '') throw invalidField('body.value', 'a nix input must be a Nix expression');
      const problem = await nixParseProblem(value);
      if (problem) throw invalidField('body.value', `is not a valid Nix expression: ${problem}`);
      return;
    }
  }
}
