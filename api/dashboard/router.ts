import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Context } from 'koa';
import Router from '@koa/router';
import { bodyParser } from '@koa/bodyparser';
import { h, type VNode } from 'preact';
import escapeHtml from 'escape-html';
import type { AppDeps, Principal, RouteDef } from '../route';
import type { PageDef, PageInput, SharedByRole } from './page';
import { PAGES } from './pages';
import { CSRF_SLOT, NAME_SLOT, roleTemplateOf, viewerOf } from './viewer';
import { fillPersonalParts } from './personal-parts';
import { ErrorPage } from './error-page';
import { LoginForm, safeNext, signInProviders } from './pages/login';
import { signInByForm, signOut } from './password-sign-in';
import { FORM_ACTIONS } from './channel-forms';
import type { FormActionDef } from './form-action';
import { ApiError, fromDatabaseError } from '../errors';
import { readsRequireSignIn, sameSecret } from '../auth';
import { SESSION_COOKIE } from '../queries/sessions';
import { SingleFlight, type WriteEpoch } from '../single-flight';
import { answerOf, htmlAnswer, sendAnswer, type PageAnswer } from './page-answer';
import { writeAuditEntry } from '../queries/audit-log';

/** The one script and the one stylesheet, read once, served with an ETag. */
const STATIC_FILES: Record<string, { type: string; body: Buffer; etag: string }> = Object.fromEntries(
  [
    ['dashboard.js', 'application/javascript; charset=utf-8'],
    ['dashboard.css', 'text/css; charset=utf-8'],
  ].map(([name, type]) => {
    const body = fs.readFileSync(path.join(__dirname, 'static', name));
    return [name, { type, body, etag: `"${crypto.createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` }];
  }),
);

const parseForm = bodyParser({ enableTypes: ['form'], formLimit: '16kb', encoding: 'utf-8' });

/** A page path in @koa/router's syntax: `/builds/{id}` → `/builds/:id`. */
function routerPath(pagePath: string): string {
  return pagePath.replace(/\{(\w+)\}/g, ':$1');
}

function markAnswered(ctx: Context, template: string): void {
  (ctx.state as { route?: string }).route = template;
}

function sendHtml(ctx: Context, status: number, page: VNode<any>): void {
  sendAnswer(ctx, htmlAnswer(status, page));
}

/**
 * Whether a request comes from nobody in particular: no session cookie and no Authorization header. Such a request
 * sees what every visitor sees (no CSRF token, no name, only public buttons), so identical ones may share an answer.
 */
function fromVisitor(ctx: Context): boolean {
  return !ctx.cookies.get(SESSION_COOKIE) && !ctx.get('authorization');
}

function formField(ctx: Context, name: string): string {
  const body = (ctx.request as { body?: Record<string, unknown> }).body ?? {};
  const value = body[name];
  return typeof value === 'string' ? value : '';
}

/** The dashboard's HTML pages, its sign-in and sign-out forms and its static files, beside the API. */
export function dashboardRouter(deps: AppDeps, routes: RouteDef[], writeEpoch: WriteEpoch): Router {
  const router = new Router();
  /** Visitors' page answers in flight, by origin and URL (see the page routes below). */
  const visitorPages = new SingleFlight<PageAnswer>(writeEpoch);
  /** Signed-in viewers' answers of pages shared by role in flight, by role, origin and URL (answerSharedByRole). */
  const signedInPages = new SingleFlight<PageAnswer>(writeEpoch);

  const paramsOf = (ctx: Context, page: Pick<PageDef, 'path'>): Record<string, string> => {
    const params: Record<string, string> = {};
    const names = [...page.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
    const captures = (ctx as Context & { captures?: string[] }).captures ?? [];
    names.forEach((name, i) => {
      try {
        params[name] = decodeURIComponent(captures[i] ?? '');
      } catch {
        params[name] = '';
      }
    });
    return params;
  };
  /** A page's input; with `prefetch`, the page's first read (PageDef.prefetch) runs beside the session lookup. */
  const inputOf = async (ctx: Context, page: Pick<PageDef, 'path' | 'prefetch'>, prefetch = false): Promise<PageInput> => {
    const params = paramsOf(ctx, page);
    const query = { ...ctx.query };
    const prefetched = prefetch ? page.prefetch?.({ params, query, deps }) : undefined;
    prefetched?.catch(() => {}); // awaited by render; a rejection is not unhandled meanwhile
    return { params, query, viewer: await viewerOf(ctx, deps, routes), deps, routes, koa: ctx, prefetched };
  };

  /**
   * A page shared by role (PageDef.sharedByRole), for a viewer signed in by session cookie: the answer rendered for
   * their role at this origin and URL, made once for the requests of that role in flight together (never one begun
   * before a write this process completed, as for visitors), then this viewer's name, CSRF token and the page's
   * personal parts filled into it.
   */
  const answerSharedByRole = async (ctx: Context, page: PageDef, shared: SharedByRole, input: PageInput & { viewer: { principal: Principal } }): Promise<PageAnswer> => {
    const { principal, csrfToken } = input.viewer;
    const template = roleTemplateOf(input.viewer);
    const answer = await signedInPages.run(`${principal.role} ${ctx.origin}${ctx.url}`, async () => answerOf(await page.render({ ...input, viewer: template }), template));
    if ('redirect' in answer) return answer;
    // The page's own parts belong to the page itself, not to its 404 or 403 page (which has the layout's only).
    const pageParts = answer.status === 200 ? await shared.personalParts(input) : {};
    const parts = { [NAME_SLOT]: escapeHtml(principal.name), [CSRF_SLOT]: escapeHtml(csrfToken ?? ''), ...pageParts };
    return { status: answer.status, html: fillPersonalParts(answer.html, parts) };
  };

  /** A page's answer to this request: signed in first when reads require it, then the page's render. */
  const answerPage = async (ctx: Context, page: PageDef, signInFirst: boolean): Promise<PageAnswer> => {
    const sharedByRole = page.sharedByRole && ctx.cookies.get(SESSION_COOKIE) && !ctx.get('authorization') ? page.sharedByRole : undefined;
    // A page's first read runs beside the session lookup when anyone may read the page (see PageDef.prefetch), but
    // not where signed-in viewers share renders: a request that joins one reads nothing of the page.
    const input = await inputOf(ctx, page, !signInFirst && !sharedByRole);
    if (signInFirst && !input.viewer.principal) return { redirect: `/login?next=${encodeURIComponent(ctx.url)}` };
    const { principal } = input.viewer;
    if (sharedByRole && principal?.viaCookie) return answerSharedByRole(ctx, page, sharedByRole, { ...input, viewer: { ...input.viewer, principal } });
    return answerOf(await page.render(input), input.viewer);
  };

  for (const page of PAGES) {
    router.get(routerPath(page.path), async (ctx) => {
      markAnswered(ctx, page.path);
      // Reads need a signed-in user when the environment or the config file says so, as for the API.
      const signInFirst = !page.alwaysPublic && (await readsRequireSignIn(deps.config));
      if (signInFirst || !fromVisitor(ctx)) {
        sendAnswer(ctx, await answerPage(ctx, page, signInFirst));
        return;
      }
      // Visitors asking for the same URL at the same origin (which the webhook and channel pages show) while its
      // answer is being made get that answer: it holds nothing of the request or the viewer. Never one begun before
      // a write this process completed (the write epoch, as for the API's coalesced routes), and never a cache.
      sendAnswer(ctx, await visitorPages.run(`${ctx.origin}${ctx.url}`, () => answerPage(ctx, page, false)));
    });
  }

  const loginPage = PAGES.find((p) => p.path === '/login')!;
  router.post('/login', parseForm, async (ctx) => {
    markAnswered(ctx, '/login');
    const username = formField(ctx, 'username').slice(0, 100);
    const password = formField(ctx, 'password').slice(0, 1024);
    const refusal = await signInByForm(ctx, deps, username, password);
    if (!refusal) {
      ctx.redirect(safeNext(ctx.query.next));
      return;
    }
    const input = await inputOf(ctx, loginPage);
    sendHtml(ctx, refusal.status, h(LoginForm, { input, providers: await signInProviders(deps, input.viewer), error: refusal.message, username }));
  });

  router.post('/logout', parseForm, async (ctx) => {
    markAnswered(ctx, '/logout');
    if (!(await signOut(ctx, deps.db, formField(ctx, 'csrf_token')))) {
      const input = await inputOf(ctx, loginPage);
      sendHtml(ctx, 403, h(ErrorPage, { viewer: input.viewer, title: 'Not signed out', message: 'The sign-out form was not this session’s; reload the page and try again.' }));
      return;
    }
    ctx.redirect('/');
  });

  /** A form's action: signed in, the session's CSRF token in the form, the API route's role; then its work, audited. */
  const runFormAction = async (ctx: Context, action: FormActionDef): Promise<void> => {
    markAnswered(ctx, action.path);
    const input = await inputOf(ctx, action);
    const { viewer } = input;
    const refuse = (status: number, title: string, message: string) => sendHtml(ctx, status, h(ErrorPage, { viewer, title, message }));
    if (!viewer.principal) return refuse(401, 'Not signed in', 'Sign in to use this form.');
    if (!viewer.csrfToken || !sameSecret(formField(ctx, 'csrf_token'), viewer.csrfToken)) {
      return refuse(403, 'Not done', 'The form was not this session’s; reload the page and try again.');
    }
    if (!viewer.may(action.api.method, action.api.path)) return refuse(403, 'Not allowed', `Your role (${viewer.principal.role}) may not do this.`);
    try {
      const field = (name: string) => formField(ctx, name).replace(/\u0000/g, '').trim();
      const { redirect, audit } = await action.run({ ...input, field });
      await writeAuditEntry(deps.db, {
        actorKind: viewer.principal.kind,
        actorId: viewer.principal.id,
        actorName: viewer.principal.name,
        ...audit,
        remoteAddr: ctx.ip || null,
      });
      ctx.status = 303; // see other: the browser GETs the result, and a reload does not post again
      ctx.redirect(redirect);
    } catch (err) {
      const refusal = err instanceof ApiError ? err : fromDatabaseError(err);
      if (!refusal || refusal.status >= 500) throw err;
      refuse(refusal.status, 'Not done', refusal.message);
    }
  };
  for (const action of FORM_ACTIONS) router.post(routerPath(action.path), parseForm, (ctx) => runFormAction(ctx, action));

  router.get('/static/:file', async (ctx) => {
    markAnswered(ctx, '/static/{file}');
    const file = STATIC_FILES[ctx.params.file];
    if (!file) {
      ctx.status = 404;
      ctx.type = 'text/plain';
      ctx.body = 'no such file';
      return;
    }
    ctx.set('etag', file.etag);
    ctx.set('cache-control', 'public, max-age=300');
    ctx.set('x-content-type-options', 'nosniff');
    if (ctx.get('if-none-match') === file.etag) {
      ctx.status = 304;
      return;
    }
    ctx.type = file.type;
    ctx.body = file.body;
  });

  return router;
}
