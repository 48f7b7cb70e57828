import type { Context } from 'koa';
import { holdsRole, resolvePrincipal } from '../auth';
import type { AppDeps, Principal, RouteDef } from '../route';
import { personalSlot } from './personal-parts';

/** Who looks at a page: the session's user (or nobody), and what the route table lets them call. */
export interface Viewer {
  principal: Principal | undefined;
  /** The session's CSRF token, which the script sends back as x-csrf-token. */
  csrfToken: string | undefined;
  /** Whether the viewer may call the API route `METHOD /api/v1/...` (its declared access). */
  may(method: RouteDef['method'], path: string): boolean;
  /**
   * Set for a render shared by every signed-in viewer of the principal's role (roleTemplateOf): a part that is one
   * viewer's own must be a personal slot (personal-parts.ts), filled per request.
   */
  sharedByRole?: true;
}

/** The name and CSRF token of a render shared by role: slots, filled per request with each viewer's own. */
export const NAME_SLOT = personalSlot('name');
export const CSRF_SLOT = personalSlot('csrf');
/** Who a render shared by role is for: no user id a read could use (a slot, never a UUID). */
const USER_SLOT = personalSlot('user');

/**
 * A signed-in viewer as every viewer of their role: the same role (so the same buttons and navigation), with slots
 * for what is their own (name, CSRF token); their user id is a slot too, so a render that would read by it fails
 * instead of showing one viewer's data to another.
 */
export function roleTemplateOf(viewer: Viewer & { principal: Principal }): Viewer {
  const { kind, role, viaCookie } = viewer.principal;
  return { principal: { kind, id: USER_SLOT, name: NAME_SLOT, role, userId: USER_SLOT, viaCookie }, csrfToken: CSRF_SLOT, may: viewer.may, sharedByRole: true };
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
