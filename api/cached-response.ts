import crypto from 'node:crypto';
import type { Context } from 'koa';

export interface CachedBody {
  body: Buffer | string;
  contentType: string;
  /** Seconds a client or proxy may reuse the answer without asking again. */
  maxAgeSeconds: number;
  status?: number;
  /** The body's ETag when already known (else computed here). */
  etag?: string;
  headers?: Record<string, string>;
}

/** A strong ETag of the body's bytes: equal bodies, equal tags, across restarts too. */
export function etagOf(body: Buffer | string): string {
  return `"${crypto.createHash('sha256').update(body).digest('base64url').slice(0, 32)}"`;
}

/**
 * Answers with the body, its ETag and Cache-Control, or 304 with no body when the client's
 * If-None-Match already names this ETag (Koa's freshness check). HEAD gets the headers only.
 */
export function sendCached(ctx: Context, reply: CachedBody): void {
  ctx.status = reply.status ?? 200;
  ctx.set('Cache-Control', `public, max-age=${reply.maxAgeSeconds}`);
  ctx.set('ETag', reply.etag ?? etagOf(reply.body));
  for (const [k, v] of Object.entries(reply.headers ?? {})) ctx.set(k, v);
  if (ctx.status === 200 && ctx.fresh) {
    ctx.status = 304;
    return;
  }
  ctx.type = reply.contentType;
  ctx.body = reply.body;
}

/** The 304 a cached route declares: a revalidation whose If-None-Match names the current ETag. */
export const notModified = { description: 'Not modified: If-None-Match named the current ETag', contentType: '' };
