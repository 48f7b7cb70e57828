import type { RequestContext } from './route';

/**
 * The URL users reach Ringmaster at: RINGMASTER_PUBLIC_URL when set (behind a proxy that rewrites
 * hosts), else the origin of the request (Koa honours X-Forwarded-Proto/Host, the app trusts its proxy).
 */
export function publicBaseUrl(rc: Pick<RequestContext, 'deps' | 'koa'>): string {
  const configured = rc.deps.config.publicUrl;
  return (configured || `${rc.koa.protocol}://${rc.koa.host}`).replace(/\/+$/, '');
}

/** Where the binary cache is served: `<public url>/nix-cache`. */
export function binaryCacheUrl(rc: RequestContext): string {
  return `${publicBaseUrl(rc)}/nix-cache`;
}
