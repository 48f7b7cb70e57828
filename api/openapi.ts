import type { JsonSchema, RouteDef } from './route';

const VERSION = '0.1.0';

type ResponseSpec = JsonSchema | { description: string; contentType: string };
function rawResponse(r: ResponseSpec): { description: string; contentType: string } | undefined {
  return typeof r.contentType === 'string' && typeof r.description === 'string' ? (r as { description: string; contentType: string }) : undefined;
}

function parametersOf(def: RouteDef): unknown[] {
  const out: unknown[] = [];
  const params = def.params as { properties?: Record<string, JsonSchema>; required?: string[] } | undefined;
  for (const name of [...def.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1])) {
    out.push({ name, in: 'path', required: true, schema: params?.properties?.[name] ?? { type: 'string' } });
  }
  const query = def.query as { properties?: Record<string, JsonSchema>; required?: string[] } | undefined;
  for (const [name, schema] of Object.entries(query?.properties ?? {})) {
    out.push({ name, in: 'query', required: query?.required?.includes(name) ?? false, schema });
  }
  return out;
}

function statusText(status: number): string {
  return ({ 200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 302: 'Found', 400: 'Bad request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not found', 405: 'Method not allowed', 409: 'Conflict', 422: 'Unprocessable', 503: 'Unavailable' } as Record<number, string>)[status] ?? 'Response';
}

/** The OpenAPI 3.1 document of every route in the table. */
export function openApiDocument(routes: RouteDef[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const def of routes) {
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(def.responses)) {
      const raw = rawResponse(r);
      if (!raw) responses[status] = { description: statusText(Number(status)), content: { 'application/json': { schema: r } } };
      else if (raw.contentType) responses[status] = { description: raw.description, content: { [raw.contentType]: { schema: { type: 'string' } } } };
      else responses[status] = { description: raw.description };
    }
    const op: Record<string, unknown> = {
      operationId: `${def.method.toLowerCase()}${def.path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      summary: def.summary,
      tags: [def.tag],
      parameters: parametersOf(def),
      responses,
    };
    if (def.body) op.requestBody = { required: true, content: { 'application/json': { schema: def.body } } };
    if (def.access !== 'public' && def.access !== 'always-public') {
      op.security = [{ bearerAuth: [] }, { sessionCookie: [] }];
      op['x-ringmaster-role'] = def.access;
    }
    (paths[def.path] ??= {})[def.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Ringmaster API', version: VERSION, description: 'The circus-compatible HTTP API of Ringmaster, a Nix CI server on Temporal.' },
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

/** docs/API.md: the seed's table (method, endpoint, description, responses), generated from the route table. */
export function apiMarkdown(routes: RouteDef[]): string {
  const rows = [...routes].sort((a, b) => (a.path === b.path ? a.method.localeCompare(b.method) : a.path.localeCompare(b.path)));
  const lines = [
    '# Ringmaster HTTP API',
    '',
    'Generated from the route table by `npm run api-docs`; do not edit by hand.',
    'GET, HEAD and OPTIONS requests are public unless noted; mutating requests need `Authorization: Bearer <api-key>` and the role named.',
    '',
    '| Method | Endpoint | Description | Role | Responses |',
    '|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(`| ${r.method} | ${r.path} | ${r.summary} | ${r.access} | ${Object.keys(r.responses).join(', ')} |`);
  }
  return lines.join('\n') + '\n';
}
