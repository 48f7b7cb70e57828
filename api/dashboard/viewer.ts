import type { Context } from 'koa';
import { holdsRole, resolvePrincipal } from '../auth';
import type { AppDeps, Principal, RouteDef } from '../route';

/** Who looks at a page: the session's user (or nobody), and what the route table lets them call. */
export interface Viewer {
  principal: Principal | undefined;
  /** The session's CSRF token, which the script sends back as x-csrf-token. */
  csrfToken: string | undefined;
  /** Whether the viewer may call the API route `METHOD /api/v1/...` (its declared access). */
  may(method: RouteDef['method'], path: string): boolean;
}

export async function viewerOf(ctx: Context, deps: Pick<AppDeps, 'db' | 'config'>, routes: RouteDef[]): Promise<Viewer> {
  // Pages read the session cookie only: an Authorization header is the API's business.
  let principal: Principal | undefined;
  try {
    principal = await resolvePrincipal(ctx, deps);
  } catch {
    principal = undefined;
  }
  const csrfToken = (principal as (Principal & { csrfToken?: string }) | undefined)?.csrfToken;
  return {
    principal,
    csrfToken,
    may(method, path) {
      const route = routes.find((r) => r.method === method && r.path === path);
      if (!route) return false;
      if (route.access === 'public' || route.access === 'always-public') return true;
      return principal !== undefined && holdsRole(principal, route.access);
    },
  };
}
