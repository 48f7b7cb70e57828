import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import Ajv, { type ErrorObject } from 'ajv';
import { redactSecrets } from './redact';
import { githubOAuthConfigSchema, type GithubOAuthConfig } from './config-github-oauth';
import { ldapConfigSchema, type LdapConfig } from './config-ldap';
import { duplicateTargetNames, NOTIFICATIONS_SECTION_SCHEMA, type NotificationsConfigSection } from './notifications/targets';

/**
 * The server's config file (`RINGMASTER_CONFIG_FILE`, default `<data dir>/ringmaster.json`): a JSON
 * document that `GET/PUT /api/v1/admin/config` read and replace. Secrets in it (any key that
 * lib/redact.ts treats as secret) are shown as "[redacted]", and a "[redacted]" sent back keeps the
 * stored secret.
 */
export interface RingmasterConfigFile {
  require_auth_for_reads?: boolean;
  evaluator?: { max_concurrent?: number; timeout?: number };
  builds?: { default_timeout?: number; default_max_silent?: number; log_limit_bytes?: number; max_retries?: number };
  /** Notification targets and delivery settings (lib/notifications/targets.ts); applied live. */
  notifications?: NotificationsConfigSection;
  github_oauth?: GithubOAuthConfig;
  ldap?: LdapConfig;
}

export interface ConfigFileProblem {
  /** e.g. "contents.evaluator.max_concurrent" */
  field: string;
  message: string;
}

export type ConfigValidation = { ok: true; config: RingmasterConfigFile } | { ok: false; problems: ConfigFileProblem[] };

export const REDACTED = '[redacted]';

/** What GET answers when no config file exists yet. */
export const DEFAULT_CONFIG_FILE: RingmasterConfigFile = {
  require_auth_for_reads: false,
  evaluator: { max_concurrent: 2 },
  builds: { default_timeout: 36_000, default_max_silent: 7_200, log_limit_bytes: 64 * 1024 * 1024 },
};

export function defaultConfigContents(): string {
  return `${JSON.stringify(DEFAULT_CONFIG_FILE, null, 2)}\n`;
}

const roles = ['admin', 'read-only', 'create-projects', 'eval-jobset', 'cancel-build', 'restart-jobs', 'bump-to-front'];
const seconds = { type: 'integer', minimum: 1, maximum: 30 * 24 * 3600 };
const text = { type: 'string', minLength: 1, maxLength: 4096 };
const section = (properties: Record<string, unknown>, required: string[] = []) => ({ type: 'object', additionalProperties: false, required, properties });

export const CONFIG_FILE_SCHEMA = section({
  require_auth_for_reads: { type: 'boolean' },
  evaluator: section({ max_concurrent: { type: 'integer', minimum: 1, maximum: 1024 }, timeout: seconds }),
  builds: section({
    default_timeout: seconds,
    default_max_silent: seconds,
    log_limit_bytes: { type: 'integer', minimum: 0 },
    max_retries: { type: 'integer', minimum: 0, maximum: 100 },
  }),
  notifications: NOTIFICATIONS_SECTION_SCHEMA,
  github_oauth: githubOAuthConfigSchema(roles),
  ldap: ldapConfigSchema(roles),
});

const ajv = new Ajv({ allErrors: true, strict: false });
const validateSchema = ajv.compile<RingmasterConfigFile>(CONFIG_FILE_SCHEMA);

function problemOf(e: ErrorObject): ConfigFileProblem {
  const pointer = e.instancePath.split('/').filter(Boolean).join('.');
  let field = pointer ? `contents.${pointer}` : 'contents';
  const p = e.params as Record<string, unknown>;
  let message = e.message ?? 'is invalid';
  if (e.keyword === 'required' && typeof p.missingProperty === 'string') {
    field = `${field}.${p.missingProperty}`;
    message = 'is required';
  } else if (e.keyword === 'additionalProperties' && typeof p.additionalProperty === 'string') {
    field = `${field}.${p.additionalProperty}`;
    message = 'is not a known setting';
  } else if (e.keyword === 'enum') {
    message = `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return { field, message };
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false; problem: ConfigFileProblem } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, problem: { field: 'contents', message: `is not valid JSON (${(err as Error).message})` } };
  }
}

/** Parses the text and checks it against CONFIG_FILE_SCHEMA; problems name fields as `contents.<path>`. */
export function validateConfigContents(text: string): ConfigValidation {
  const parsed = parseJson(text);
  if (!parsed.ok) return { ok: false, problems: [parsed.problem] };
  if (validateSchema(parsed.value)) {
    const duplicates = duplicateTargetNames(parsed.value.notifications);
    if (duplicates.length > 0) return { ok: false, problems: duplicates.map((name) => ({ field: 'contents.notifications.targets', message: `two targets are named "${name}"; names must be unique` })) };
    return { ok: true, config: parsed.value };
  }
  const problems = (validateSchema.errors ?? []).map(problemOf);
  return { ok: false, problems: problems.length > 0 ? problems : [{ field: 'contents', message: 'is invalid' }] };
}

/** The file's text, or the default config's text when there is no file yet. */
export async function readConfigFile(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return defaultConfigContents();
    throw err;
  }
}

/** Replaces the file so that a reader sees the old or the new text, never a part: temp file, fsync, rename. */
export async function writeConfigFileAtomically(file: string, contents: string): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true });
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  const handle = await fs.open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(contents, 'utf8');
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => {});
    await fs.rm(temp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await fs.rename(temp, file);
  } catch (err) {
    await fs.rm(temp, { force: true });
    throw err;
  }
  // Make the rename itself durable.
  const dirHandle = await fs.open(dir, 'r').catch(() => undefined);
  if (dirHandle) {
    await dirHandle.sync().catch(() => {});
    await dirHandle.close();
  }
}

/** Whether lib/redact.ts treats a field of this name as a secret (asks redactSecrets itself, so the rule stays in one place). */
export function isSecretKey(key: string): boolean {
  return (redactSecrets({ [key]: true }) as Record<string, unknown>)[key] === REDACTED;
}

/** The text as an admin may see it: every secret replaced by "[redacted]". Throws if the text is not JSON. */
export function redactConfigContents(text: string): string {
  const parsed = parseJson(text);
  if (!parsed.ok) throw new Error(`the config file is not valid JSON: ${parsed.problem.message}`);
  return `${JSON.stringify(redactSecrets(parsed.value), null, 2)}\n`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

/** Puts the stored secret back wherever the incoming document says "[redacted]" for a secret field. */
function restoreRedactedSecrets(incoming: unknown, stored: unknown, at: string, problems: ConfigFileProblem[]): { value: unknown; restored: boolean } {
  if (!isObject(incoming)) return { value: incoming, restored: false };
  const out: Record<string, unknown> | unknown[] = Array.isArray(incoming) ? [] : {};
  let restored = false;
  for (const [k, v] of Object.entries(incoming)) {
    const field = `${at}.${k}`;
    const storedValue = isObject(stored) ? (stored as Record<string, unknown>)[k] : undefined;
    if (v === REDACTED && isSecretKey(k)) {
      if (storedValue === undefined || storedValue === null) {
        problems.push({ field, message: `is "${REDACTED}" but no secret is stored for it; send the secret itself` });
        (out as Record<string, unknown>)[k] = v;
      } else {
        (out as Record<string, unknown>)[k] = storedValue;
        restored = true;
      }
      continue;
    }
    const inner = restoreRedactedSecrets(v, storedValue, field, problems);
    (out as Record<string, unknown>)[k] = inner.value;
    restored ||= inner.restored;
  }
  return { value: out, restored };
}

export type ConfigReplacement = { ok: true; contents: string; config: RingmasterConfigFile } | { ok: false; problems: ConfigFileProblem[] };

/**
 * PUT's whole job: parse the new text, keep stored secrets where it says "[redacted]", validate,
 * write atomically. Answers the redacted text now stored, or the problems (and then writes nothing).
 */
export async function replaceConfigFile(file: string, text: string): Promise<ConfigReplacement> {
  const parsed = parseJson(text);
  if (!parsed.ok) return { ok: false, problems: [parsed.problem] };
  const storedParsed = parseJson(await readConfigFile(file));
  const stored = storedParsed.ok ? storedParsed.value : undefined;
  const problems: ConfigFileProblem[] = [];
  const merged = restoreRedactedSecrets(parsed.value, stored, 'contents', problems);
  if (problems.length > 0) return { ok: false, problems };
  // Keep the admin's formatting unless secrets had to be put back.
  const contents = merged.restored ? `${JSON.stringify(merged.value, null, 2)}\n` : text;
  const validation = validateConfigContents(contents);
  if (!validation.ok) return validation;
  await writeConfigFileAtomically(file, contents);
  return { ok: true, contents: redactConfigContents(contents), config: validation.config };
}
