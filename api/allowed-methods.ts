import type { RouteDef } from './route';

/**
 * Which methods a request path has, as the OpenAPI document says: the methods of the most specific
 * routes whose template matches it (the fewest parameters). `/api/v1/evaluations/trigger` has POST
 * only, though `GET /api/v1/evaluations/{id}` would match its text.
 */
export interface AllowedMethods {
  /** The methods (HEAD with GET) and how many parameters the matching templates have; undefined when none match. */
  of(path: string): { methods: string[]; params: number } | undefined;
}

export function paramCount(template: string): number {
  return [...template.matchAll(/\{(\w+)\}/g)].length;
}

function templatePattern(template: string): RegExp {
  const source = template
    .split(/(\{\w+\})/)
    .map((part) => (/^\{\w+\}$/.test(part) ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}/?$`);
}

export function allowedMethods(routes: RouteDef[]): AllowedMethods {
  const templates = routes.map((r) => ({ pattern: templatePattern(r.path), method: r.method, params: paramCount(r.path) }));
  return {
    of(path) {
      const matching = templates.filter((t) => t.pattern.test(path));
      if (matching.length === 0) return undefined;
      const params = Math.min(...matching.map((t) => t.params));
      const methods = new Set<string>(matching.filter((t) => t.params === params).map((t) => t.method));
      if (methods.has('GET')) methods.add('HEAD');
      return { methods: [...methods], params };
    },
  };
}
