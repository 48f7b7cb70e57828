import { notifyDispatcherOfBuilders } from '../dispatcher-client';
import { secretBoxFor, secretKeyFileOf } from '../../lib/secret-box';
import { sealBuilderKey } from '../../lib/sealed-builder-key';
import { runBuilderCheck } from '../builder-check-client';
import { defineRoute, type RouteDef } from '../route';
import { invalidField, notFound } from '../errors';
import { arrayOf, errorBody, identifier, idParams, noContent, nullable, nullableString, nullableTimestamp, stringArray, timestamp, uuid } from '../schemas';
import {
  builderView,
  deleteBuilder,
  findBuilder,
  findBuilderSession,
  insertBuilder,
  listBuilderSessions,
  listBuilders,
  listConnectedBuilderSessions,
  updateBuilder,
  type BuilderFields,
  type BuilderRow,
} from '../queries/builders';

export const builderSchema = {
  type: 'object',
  required: [
    'id', 'name', 'ssh_uri', 'systems', 'max_jobs', 'speed_factor', 'supported_features', 'mandatory_features', 'enabled',
    'public_host_key', 'ssh_key_file', 'consecutive_failures', 'disabled_until', 'last_failure', 'cpu_cores', 'created_at',
    'has_ssh_private_key',
  ],
  properties: {
    id: uuid,
    name: { type: 'string' },
    ssh_uri: { type: 'string' },
    systems: stringArray,
    max_jobs: { type: 'integer' },
    speed_factor: { type: 'number' },
    supported_features: stringArray,
    mandatory_features: stringArray,
    enabled: { type: 'boolean' },
    public_host_key: nullableString,
    ssh_key_file: nullableString,
    remote_store: nullableString,
    has_ssh_private_key: { type: 'boolean', description: 'whether a private key is stored; the key itself is never returned' },
    consecutive_failures: { type: 'integer' },
    disabled_until: nullableTimestamp,
    last_failure: nullableString,
    cpu_cores: { type: ['integer', 'null'] },
    check: {
      type: ['object', 'null'],
      description: 'the last check (a trivial /bin/sh derivation built on the builder, run by GET …?check=true); null when never checked or when its connection settings changed since',
      required: ['status', 'error', 'checked_at'],
      properties: {
        status: { type: 'string', enum: ['passed', 'failed', 'running'] },
        error: { ...nullableString, description: "Nix's error (or the connection's) when the check failed" },
        checked_at: nullableTimestamp,
      },
    },
    created_at: timestamp,
    updated_at: timestamp,
  },
};

export const builderSessionSchema = {
  type: 'object',
  required: ['machine_id', 'name', 'systems', 'connected', 'last_seen'],
  properties: {
    machine_id: { type: 'string' },
    name: { type: 'string' },
    hostname: nullableString,
    systems: stringArray,
    supported_features: stringArray,
    mandatory_features: stringArray,
    speed_factor: { type: 'number' },
    cpu_count: { type: ['integer', 'null'] },
    max_jobs: { type: 'integer' },
    current_jobs: { type: 'integer' },
    last_seen: nullableTimestamp,
    load1: { type: ['number', 'null'] },
    load5: { type: ['number', 'null'] },
    load15: { type: ['number', 'null'] },
    mem_total: { type: ['integer', 'null'] },
    mem_used: { type: ['integer', 'null'] },
    store_free: { type: ['integer', 'null'] },
    connected: { type: 'boolean' },
    builds_succeeded: { type: 'integer' },
    builds_failed: { type: 'integer' },
    consecutive_failures: { type: 'integer' },
    disabled_until: nullableTimestamp,
    created_at: timestamp,
    updated_at: timestamp,
  },
};

/**
 * ssh://[user@]host[:port], with host a name, an IPv4 address or a bracketed IPv6 address; also ssh-ng://.
 * The schema's pattern, so the OpenAPI document says what is accepted.
 */
const SSH_URI_PATTERN =
  '^ssh(-ng)?://(?:[A-Za-z0-9._][A-Za-z0-9._-]*@)?(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\\[[0-9A-Fa-f:.]+\\])(?::(\\d{1,5}))?/?$';
const feature = { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_][A-Za-z0-9._-]*$' };
const system = { type: 'string', minLength: 3, maxLength: 100, pattern: '^[A-Za-z0-9_]+-[A-Za-z0-9_]+$' };

const builderWritableProperties = {
  name: identifier,
  ssh_uri: { type: 'string', minLength: 1, maxLength: 2048, pattern: SSH_URI_PATTERN },
  systems: { type: 'array', minItems: 1, maxItems: 32, uniqueItems: true, items: system },
  max_jobs: { type: 'integer', minimum: 1, maximum: 10_000 },
  speed_factor: { type: 'number', exclusiveMinimum: 0, maximum: 1_000_000 },
  supported_features: { type: 'array', maxItems: 100, uniqueItems: true, items: feature },
  mandatory_features: { type: 'array', maxItems: 100, uniqueItems: true, items: feature },
  enabled: { type: 'boolean' },
  public_host_key: { type: ['string', 'null'], maxLength: 16_384 },
  ssh_key_file: { type: ['string', 'null'], minLength: 1, maxLength: 4096 },
  ssh_private_key: { type: ['string', 'null'], maxLength: 65_536, description: 'write-only: stored, never returned' },
  remote_store: { type: ['string', 'null'], maxLength: 2048 },
  cpu_cores: { type: ['integer', 'null'], minimum: 1, maximum: 100_000 },
};

const builderCreateBody = {
  type: 'object',
  required: ['name', 'ssh_uri', 'systems'],
  additionalProperties: false,
  properties: builderWritableProperties,
};

const builderUpdateBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  description:
    'Any writable field. `enabled: true` also clears consecutive_failures and disabled_until (re-enables a builder ' +
    'that failed repeatedly); consecutive_failures, disabled_until and last_failure may also be set directly.',
  properties: {
    ...builderWritableProperties,
    consecutive_failures: { type: 'integer', minimum: 0 },
    disabled_until: nullable({ type: 'string', format: 'date-time' }),
    last_failure: { type: ['string', 'null'], maxLength: 10_000 },
  },
};

const SSH_URI = new RegExp(SSH_URI_PATTERN);

export function isValidSshUri(uri: string): boolean {
  const m = SSH_URI.exec(uri);
  if (!m) return false;
  const port = m[2] === undefined ? 22 : Number(m[2]);
  return port >= 1 && port <= 65_535;
}

const KEY_TYPES = /^(ssh-ed25519|ssh-rsa|ssh-dss|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com)$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function isOpenSshPublicKeyLine(line: string): boolean {
  const [type, blob] = line.trim().split(/\s+/);
  if (!type || !blob || !KEY_TYPES.test(type) || !BASE64.test(blob) || !blob.startsWith('AAAA')) return false;
  // The blob starts with the key type again, length-prefixed.
  const decoded = Buffer.from(blob, 'base64');
  if (decoded.length < 4 + type.length) return false;
  const len = decoded.readUInt32BE(0);
  return decoded.subarray(4, 4 + len).toString('latin1') === type;
}

/** An OpenSSH public key line (`ssh-ed25519 AAAA… [comment]`), or Hydra's base64 of such a line. */
export function isValidPublicHostKey(value: string): boolean {
  const trimmed = value.trim();
  if (isOpenSshPublicKeyLine(trimmed)) return true;
  if (!BASE64.test(trimmed) || trimmed.length < 16) return false;
  return isOpenSshPublicKeyLine(Buffer.from(trimmed, 'base64').toString('utf8'));
}

export function isValidPrivateKey(value: string): boolean {
  return /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]+-----END [A-Z0-9 ]*PRIVATE KEY-----\s*$/.test(value.trim() + '\n');
}

/** The checks a JSON schema cannot say; `existing` is the stored row for an update. */
function checkBuilderFields(body: BuilderFields, existing?: BuilderRow): void {
  if (body.ssh_uri !== undefined && !isValidSshUri(body.ssh_uri)) {
    throw invalidField('body.ssh_uri', 'must look like ssh://user@host:port (user and port optional)');
  }
  if (typeof body.public_host_key === 'string' && !isValidPublicHostKey(body.public_host_key)) {
    throw invalidField('body.public_host_key', 'must be an OpenSSH public key ("ssh-ed25519 AAAA…", "ssh-rsa …", "ecdsa-sha2-… …") or the base64 of one');
  }
  if (typeof body.ssh_private_key === 'string' && !isValidPrivateKey(body.ssh_private_key)) {
    throw invalidField('body.ssh_private_key', 'must be a PEM or OpenSSH private key (-----BEGIN … PRIVATE KEY-----)');
  }
  if (typeof body.ssh_key_file === 'string' && !body.ssh_key_file.startsWith('/')) {
    throw invalidField('body.ssh_key_file', 'must be an absolute path');
  }
  const supported = body.supported_features ?? existing?.supported_features ?? [];
  const mandatory = body.mandatory_features ?? existing?.mandatory_features ?? [];
  const missing = mandatory.filter((f) => !supported.includes(f));
  if (missing.length > 0) {
    const field = body.mandatory_features !== undefined ? 'body.mandatory_features' : 'body.supported_features';
    throw invalidField(field, `mandatory features must also be supported; not in supported_features: ${missing.join(', ')}`);
  }
}

/** The audit details of a builder write: the body without the private key, saying only whether one was sent. */
function auditDetails(body: BuilderFields): Record<string, unknown> {
  const { ssh_private_key, ...rest } = body;
  return ssh_private_key === undefined ? rest : { ...rest, ssh_private_key_changed: true };
}

const errors = { 400: errorBody, 401: errorBody, 403: errorBody };
const machineIdParams = {
  type: 'object',
  required: ['machine_id'],
  additionalProperties: false,
  properties: { machine_id: { type: 'string', minLength: 1, maxLength: 200 } },
};

export const builderRoutes: RouteDef[] = [
  defineRoute({
    method: 'GET',
    path: '/api/v1/admin/builders',
    summary: 'List remote builders',
    tag: 'admin',
    access: 'admin',
    responses: { 200: arrayOf(builderSchema), 401: errorBody, 403: errorBody },
    handler: async (_input, rc) => (await listBuilders(rc.db)).map(builderView),
  }),
  defineRoute<{}, {}, BuilderFields>({
    method: 'POST',
    path: '/api/v1/admin/builders',
    summary: 'Register a builder',
    tag: 'admin',
    access: 'admin',
    body: builderCreateBody,
    responses: { 200: builderSchema, ...errors, 409: errorBody },
    handler: async ({ body }, rc) => {
      checkBuilderFields(body);
      const builder = await insertBuilder(rc.db, sealBuilderKey(body, secretBoxFor(secretKeyFileOf(rc.deps.config))));
      rc.audit = { targetKind: 'builder', targetId: builder.id, details: auditDetails(body) };
      await notifyDispatcherOfBuilders(rc.deps.temporal);
      return builderView(builder);
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/api/v1/admin/builders/sessions',
    summary: 'List all persistent builder agent sessions (connected + historical)',
    tag: 'admin',
    access: 'admin',
    responses: { 200: arrayOf(builderSessionSchema), 401: errorBody, 403: errorBody },
    handler: async (_input, rc) => listBuilderSessions(rc.db),
  }),
  defineRoute({
    method: 'GET',
    path: '/api/v1/admin/builders/sessions/connected',
    summary: 'List currently-connected builder agents (connected and seen within the last 2 minutes)',
    tag: 'admin',
    access: 'admin',
    responses: { 200: arrayOf(builderSessionSchema), 401: errorBody, 403: errorBody },
    handler: async (_input, rc) => listConnectedBuilderSessions(rc.db),
  }),
  defineRoute<{ machine_id: string }>({
    method: 'GET',
    path: '/api/v1/admin/builders/sessions/{machine_id}',
    summary: 'Get a single builder agent session by its stable machine_id',
    tag: 'admin',
    access: 'admin',
    params: machineIdParams,
    responses: { 200: builderSessionSchema, ...errors, 404: errorBody },
    handler: async ({ params }, rc) =>
      (await findBuilderSession(rc.db, params.machine_id)) ?? Promise.reject(notFound('builder session', params.machine_id)),
  }),
  defineRoute<{ id: string }, { check?: boolean }>({
    method: 'GET',
    path: '/api/v1/admin/builders/{id}',
    summary: 'Get a builder',
    tag: 'admin',
    access: 'admin',
    params: idParams,
    query: {
      type: 'object',
      additionalProperties: false,
      properties: { check: { type: 'boolean', default: false, description: 'check the builder now (waits for a trivial build on it)' } },
    },
    responses: { 200: builderSchema, ...errors, 404: errorBody },
    handler: async ({ params, query }, rc) => {
      const builder = await findBuilder(rc.db, params.id);
      if (!builder) throw notFound('builder', params.id);
      if (!query.check) return builderView(builder);
      await runBuilderCheck(rc.db, rc.deps.temporal, params.id);
      const checked = await findBuilder(rc.db, params.id);
      if (!checked) throw notFound('builder', params.id);
      return builderView(checked);
    },
  }),
  defineRoute<{ id: string }, {}, BuilderFields>({
    method: 'PUT',
    path: '/api/v1/admin/builders/{id}',
    summary: 'Update a builder',
    tag: 'admin',
    access: 'admin',
    params: idParams,
    body: builderUpdateBody,
    responses: { 200: builderSchema, ...errors, 404: errorBody, 409: errorBody },
    handler: async ({ params, body }, rc) => {
      const existing = await findBuilder(rc.db, params.id);
      if (!existing) throw notFound('builder', params.id);
      checkBuilderFields(body, existing);
      const fields: BuilderFields = { ...body };
      if (body.enabled === true) {
        fields.consecutive_failures ??= 0;
        if (body.disabled_until === undefined) fields.disabled_until = null;
      }
      const builder = await updateBuilder(rc.db, params.id, sealBuilderKey(fields, secretBoxFor(secretKeyFileOf(rc.deps.config))));
      if (!builder) throw notFound('builder', params.id);
      rc.audit = { targetKind: 'builder', targetId: builder.id, details: auditDetails(body) };
      await notifyDispatcherOfBuilders(rc.deps.temporal);
      return builderView(builder);
    },
  }),
  defineRoute<{ id: string }>({
    method: 'DELETE',
    path: '/api/v1/admin/builders/{id}',
    summary: 'Remove a builder',
    tag: 'admin',
    access: 'admin',
    params: idParams,
    responses: { 204: noContent, ...errors, 404: errorBody },
    handler: async ({ params }, rc) => {
      if (!(await deleteBuilder(rc.db, params.id))) throw notFound('builder', params.id);
      rc.audit = { targetKind: 'builder', targetId: params.id, details: {} };
      await notifyDispatcherOfBuilders(rc.deps.temporal);
    },
  }),
];
