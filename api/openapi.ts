import type { JsonSchema, RouteDef } from './route';
import { version } from '../lib/version';
import { errorBody } from './schemas';
import { requestSchema } from './request-schema';
import { linksOf } from './openapi-links';

type ResponseSpec = JsonSchema | { description: string; contentType: string };
function rawResponse(r: ResponseSpec): { description: string; contentType: string } | undefined {
  return typeof r.contentType === 'string' && typeof r.description === 'string' ? (r as { description: string; contentType: string }) : undefined;
}

function parametersOf(def: RouteDef): unknown[] {
  const out: unknown[] = [];
  const params = (def.params ? requestSchema(def.params, 'params').schema : undefined) as { properties?: Record<string, JsonSchema>; required?: string[] } | undefined;
  for (const name of [...def.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1])) {
    out.push({ name, in: 'path', required: true, schema: params?.properties?.[name] ?? { type: 'string' } });
  }
  const query = (def.query ? requestSchema(def.query, 'query').schema : undefined) as { properties?: Record<string, JsonSchema>; required?: string[] } | undefined;
  for (const [name, schema] of Object.entries(query?.properties ?? {})) {
    out.push({ name, in: 'query', required: query?.required?.includes(name) ?? false, schema });
  }
  return out;
}

function statusText(status: number): string {
  return ({ 200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 302: 'Found', 400: 'Bad request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not found', 405: 'Method not allowed', 409: 'Conflict', 413: 'Request body too large', 422: 'Unprocessable', 429: 'Too many requests', 503: 'Unavailable' } as Record<number, string>)[status] ?? 'Response';
}

function upperFirst(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

/**
 * A unique, readable operationId from method and path: GET /api/v1/projects/{id}/jobsets becomes
 * getApiV1ProjectsByIdJobsets. Parameters read "By<Name>", so they never collide with a static segment.
 */
export function operationIdOf(def: Pick<RouteDef, 'method' | 'path'>): string {
  const words = def.path
    .replace(/\{(\w+)\}/g, (_m, name: string) => ` By_${name} `)
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map(upperFirst);
  return def.method.toLowerCase() + words.join('');
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * The error statuses every route can answer, derived from its definition, added to those it declares:
 * 400 when it takes params, a query or a body (validation; NUL characters, lengths, ranges); 401 unless
 * always public (public reads may require sign-in); 403 for role-checked routes and mutations (role,
 * CSRF header of cookie sessions); 404 when its path has parameters; 413 when it takes a body; 503
 * everywhere (the database is unavailable).
 */
export function documentedStatuses(def: RouteDef): Record<number, RouteDef['responses'][number]> {
  const out: Record<number, RouteDef['responses'][number]> = { ...def.responses };
  const takesBody = MUTATING.has(def.method) && (def.body !== undefined || def.rawBody === true);
  const add = (status: number, when: boolean) => {
    if (when && out[status] === undefined) out[status] = errorBody;
  };
  add(400, def.params !== undefined || def.query !== undefined || takesBody || /\{\w+\}/.test(def.path));
  add(401, def.access !== 'always-public');
  add(403, (def.access !== 'public' && def.access !== 'always-public') || (def.access === 'public' && MUTATING.has(def.method)));
  add(404, /\{\w+\}/.test(def.path));
  add(413, takesBody);
  add(503, true);
  return out;
}

/** Whether an empty body is valid: then the request body is optional (an empty body reads as `{}`). */
function bodyOptional(schema: JsonSchema): boolean {
  return schema.type === 'object' && (!Array.isArray(schema.required) || schema.required.length === 0);
}

/**
 * A raw (non-JSON) body: a string; for Server-Sent Events the schema of one event (its fields
 * `event`, `data`, `id`, `retry`), as tools read an OpenAPI 3.1 event stream's schema, so that they check
 * each event. (OpenAPI 3.2 names this `itemSchema`; the document is 3.1, which has no such keyword.)
 */
const SSE_EVENT_SCHEMA = {
  type: 'object',
  properties: { event: { type: 'string' }, data: { type: 'string' }, id: { type: 'string' }, retry: { type: 'integer', minimum: 0 } },
  required: ['data'],
};
function mediaTypeOf(contentType: string): Record<string, unknown> {
  return contentType === 'text/event-stream' ? { schema: SSE_EVENT_SCHEMA } : { schema: { type: 'string' } };
}

/** The OpenAPI 3.1 document of every route in the table. */
export function openApiDocument(routes: RouteDef[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const def of routes) {
    const responses: Record<string, Record<string, unknown>> = {};
    for (const [status, r] of Object.entries(documentedStatuses(def))) {
      const raw = rawResponse(r);
      if (!raw) responses[status] = { description: statusText(Number(status)), content: { 'application/json': { schema: r } } };
      else if (raw.contentType) responses[status] = { description: raw.description, content: { [raw.contentType]: mediaTypeOf(raw.contentType) } };
      else responses[status] = { description: raw.description };
    }
    for (const [status, links] of Object.entries(linksOf(def, routes, operationIdOf))) responses[status].links = links;
    const op: Record<string, unknown> = {
      operationId: operationIdOf(def),
      summary: def.summary,
      tags: [def.tag],
      parameters: parametersOf(def),
      responses,
    };
    if (def.body) op.requestBody = { required: !bodyOptional(def.body), content: { 'application/json': { schema: requestSchema(def.body, 'body').schema } } };
    if (def.access !== 'public' && def.access !== 'always-public') {
      op.security = [{ bearerAuth: [] }, { sessionCookie: [] }];
      op['x-ringmaster-role'] = def.access;
    }
    (paths[def.path] ??= {})[def.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Ringmaster API', version, description: 'The circus-compatible HTTP API of Ringmaster, a Nix CI server on Temporal.' },
    servers: [{ url: '/' }],
    paths,
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer' },
        sessionCookie: { type: 'apiKey', in: 'cookie', name: 'ringmaster_session' },
      },
    },
  };
}

const METHOD_ORDER = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

/** The order of the seed's endpoints.tsv: by path (code points), then GET, POST, PUT, PATCH, DELETE. */
export function compareRoutes(a: Pick<RouteDef, 'method' | 'path'>, b: Pick<RouteDef, 'method' | 'path'>): number {
  if (a.path !== b.path) return a.path < b.path ? -1 : 1;
  return METHOD_ORDER.indexOf(a.method) - METHOD_ORDER.indexOf(b.method);
}

function tableCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

function roleText(def: RouteDef): string {
  if (def.access === 'always-public') return 'always public';
  if (def.access === 'user') return 'signed-in user';
  return def.access;
}

/**
 * docs/API.md: the seed's table (Method, Endpoint, Description, Responses) plus the role each route
 * requires, generated from the route table by `npm run api-docs`.
 */
export function apiMarkdown(routes: RouteDef[]): string {
  const rows = [...routes].sort(compareRoutes);
  const lines = [
    '# Ringmaster HTTP API',
    '',
    '<!-- Generated from the route table (api/routes) by `npm run api-docs`; do not edit by hand. -->',
    '',
    `${rows.length} routes. The machine-readable form is the OpenAPI 3.1 document served at \`GET /api/v1/openapi.json\`.`,
    '',
    'Role: `public` routes need no credentials unless `RINGMASTER_REQUIRE_AUTH_FOR_READS` is on;',
    '`always public` routes never do. Any other route needs `Authorization: Bearer <api-key>` (or a session cookie',
    'with an `x-csrf-token` header) of a principal holding the role named; `admin` holds every role.',
    'Errors are JSON `{"error", "error_code", "details"}`.',
    '',
    '| Method | Endpoint | Description | Responses | Role |',
    '|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const statuses = Object.keys(documentedStatuses(r)).map(Number).sort((a, b) => a - b).join(', ');
    lines.push(`| ${r.method} | \`${tableCell(r.path)}\` | ${tableCell(r.summary)} | ${statuses} | ${roleText(r)} |`);
  }
  return lines.join('\n') + '\n';
}
