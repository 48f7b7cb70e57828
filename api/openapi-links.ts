import type { JsonSchema, RouteDef } from './route';

/**
 * OpenAPI links from the operations that create or list a resource to the operations that take its
 * ID, derived from the route table (no route declares them by hand):
 * - a success response carrying `id` (a created or read object), `items[].id` (a page) or `[].id`
 *   (a list) supplies that ID;
 * - to every route below the source's path (`POST /api/v1/projects` → `/api/v1/projects/{id}/…`,
 *   `/api/v1/projects/{project_id}/jobsets/{id}`), as the parameter right after it, passing the
 *   source's own path parameters on by position;
 * - and to every route with a `<resource>_id` parameter named after the source's last segment
 *   (`projects` → `project_id`, `evaluations` → `eval_id`).
 */
export interface OpenApiLink {
  operationId: string;
  parameters: Record<string, string>;
}

const RESOURCE_ID_ALIASES: Record<string, string[]> = { evaluations: ['eval_id', 'evaluation_id'] };

function segments(path: string): string[] {
  return path.split('/').filter(Boolean);
}

function isParam(segment: string): boolean {
  return /^\{\w+\}$/.test(segment);
}

function paramName(segment: string): string {
  return segment.slice(1, -1);
}

/** Where the ID sits in a success response's body, as a JSON pointer. */
function idPointer(schema: JsonSchema): string | undefined {
  const props = schema.properties as Record<string, JsonSchema> | undefined;
  if (props?.id) return '/id';
  const items = props?.items as JsonSchema | undefined;
  if (items && (items.items as JsonSchema | undefined)?.properties && ((items.items as JsonSchema).properties as Record<string, unknown>).id) return '/items/0/id';
  if (schema.type === 'array' && (schema.items as JsonSchema | undefined)?.properties && ((schema.items as JsonSchema).properties as Record<string, unknown>).id) return '/0/id';
  return undefined;
}

function resourceIdNames(sourcePath: string): string[] {
  const last = [...segments(sourcePath)].reverse().find((s) => !isParam(s));
  if (!last) return [];
  if (RESOURCE_ID_ALIASES[last]) return RESOURCE_ID_ALIASES[last];
  return last.endsWith('s') ? [`${last.slice(0, -1)}_id`] : [];
}

/** The links of one source route's success response (status → links). */
export function linksOf(
  source: RouteDef,
  routes: RouteDef[],
  operationIdOf: (def: RouteDef) => string,
):  Record<string, Record<string, OpenApiLink>> {
  const out: Record<string, Record<string, OpenApiLink>> = {};
  if (source.method !== 'GET' && source.method !== 'POST') return out;
  const src = segments(source.path);
  if (src.length > 0 && isParam(src[src.length - 1])) return out; // a single resource read: no list or create
  const idNames = resourceIdNames(source.path);
  for (const [status, response] of Object.entries(source.responses)) {
    const code = Number(status);
    if (code < 200 || code >= 300 || typeof (response as { contentType?: unknown }).contentType === 'string') continue;
    const pointer = idPointer(response as JsonSchema);
    // A list's first item is absent when the list is empty: tools then skip the link (Schemathesis
    // 4.32 reports "could not resolve parameter" and moves on).
    if (!pointer) continue;
    const links: Record<string, OpenApiLink> = {};
    for (const target of routes) {
      if (target === source) continue;
      const tgt = segments(target.path);
      const parameters: Record<string, string> = {};
      const below = tgt.length > src.length && isParam(tgt[src.length]) && src.every((s, i) => (isParam(s) ? isParam(tgt[i]) : s === tgt[i]));
      if (below) {
        src.forEach((s, i) => {
          if (isParam(s)) parameters[paramName(tgt[i])] = `$request.path.${paramName(s)}`;
        });
        parameters[paramName(tgt[src.length])] = `$response.body#${pointer}`;
      } else {
        const named = tgt.filter(isParam).map(paramName).find((n) => idNames.includes(n));
        if (!named) continue;
        parameters[named] = `$response.body#${pointer}`;
      }
      links[operationIdOf(target)] = { operationId: operationIdOf(target), parameters };
    }
    if (Object.keys(links).length > 0) out[status] = links;
  }
  return out;
}
