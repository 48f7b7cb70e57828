import type { Context } from 'koa';
import { render } from 'preact-render-to-string';
import { h, type VNode } from 'preact';
import type { PageResult } from './page';
import type { Viewer } from './viewer';
import { ErrorPage } from './error-page';

/** Pages run only their own script and style; nothing else may load, frame them or receive their forms. */
const CONTENT_SECURITY_POLICY = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/**
 * A page's answer, complete and apart from the request it was made for: an HTML document (encoded once) with its
 * status, or a redirect. The router sends it, and identical anonymous requests in flight together share one.
 */
export type PageAnswer = { status: number; html: Buffer } | { redirect: string };

/** An HTML document as an answer with `status`. */
export function htmlAnswer(status: number, page: VNode<any>): PageAnswer {
  return { status, html: Buffer.from(`<!doctype html>\n${render(page)}`, 'utf8') };
}

/** What a page's render result answers: the page, a redirect, or an HTML 404 or 403 page. */
export function answerOf(result: PageResult, viewer: Viewer): PageAnswer {
  if ('redirect' in result) return { redirect: result.redirect };
  if ('notFound' in result) return htmlAnswer(404, h(ErrorPage, { viewer, title: 'Not found', message: result.notFound }));
  if ('forbidden' in result) return htmlAnswer(403, h(ErrorPage, { viewer, title: 'Not allowed', message: result.forbidden }));
  return htmlAnswer(200, result as VNode);
}

/** Sends an answer with the headers every page carries (none of them per request or per viewer). */
export function sendAnswer(ctx: Context, answer: PageAnswer): void {
  if ('redirect' in answer) {
    ctx.redirect(answer.redirect);
    return;
  }
  ctx.status = answer.status;
  ctx.type = 'text/html; charset=utf-8';
  ctx.set('cache-control', 'no-store');
  ctx.set('content-security-policy', CONTENT_SECURITY_POLICY);
  ctx.set('x-content-type-options', 'nosniff');
  ctx.set('referrer-policy', 'same-origin');
  ctx.body = answer.html;
}
