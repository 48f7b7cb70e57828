import type { Principal } from './route';

/**
 * Which rows a caller may see, for the reads that share flights (single-flight.ts). An administrator may see more
 * than anyone else (hidden evaluations are admin-only); every other caller, anonymous or with a key of any other
 * role, sees the same rows. Readers of different classes never share an answer.
 */
export type VisibilityClass = 'admin' | 'everyone';

export function visibilityClassOf(principal: Principal | undefined): VisibilityClass {
  return principal?.role === 'admin' ? 'admin' : 'everyone';
}

/**
 * The flight a coalesced read may join: its visibility class, path and query string, which are all its answer
 * depends on (the route's promise, `coalesce` in route.ts); none for a request signed in by cookie, whose answer
 * could carry a Set-Cookie of its own session. An API key's request joins: it is authenticated (and its use
 * recorded) before it joins, and the answer carries nothing of the key.
 */
export function flightKeyOf(principal: Principal | undefined, path: string, querystring: string): string | undefined {
  if (principal && principal.kind !== 'api_key') return undefined;
  return `${visibilityClassOf(principal)} ${path}?${querystring}`;
}
