import type { Context } from 'koa';
import type { VNode } from 'preact';
import type { AppDeps, RouteDef } from '../route';
import type { Db } from '../../lib/db';
import type { Viewer } from './viewer';

/** What a page's render gets: its decoded path parameters, its query, who looks, and the app's parts. */
export interface PageInput {
  params: Record<string, string>;
  query: Record<string, unknown>;
  viewer: Viewer;
  deps: AppDeps;
  routes: RouteDef[];
  koa: Context;
  /** What the page's `prefetch` answered: started before the viewer's session was looked up, beside it. */
  prefetched?: Promise<unknown>;
}

/** A page answers HTML, a redirect, or "not found" (an HTML 404). */
export type PageResult = VNode | { redirect: string } | { notFound: string } | { forbidden: string };

/** One dashboard page: its path (OpenAPI-style, like the route table), and how it renders. */
export interface PageDef {
  path: string;
  /** Shown to anyone (the sign-in page) even when reads require a signed-in user. */
  alwaysPublic?: boolean;
  /**
   * The page's first read, which does not depend on who looks: the router starts it beside the session lookup
   * (one round trip fewer for a signed-in viewer), and render awaits `input.prefetched`. Only for pages that
   * anyone may read: with reads requiring sign-in nothing is prefetched, and render must read it itself.
   */
  prefetch?(input: Pick<PageInput, 'params' | 'query' | 'deps'>): Promise<unknown>;
  render(input: PageInput): Promise<PageResult>;
  /**
   * Signed-in viewers (by session cookie) of one role share the page's render while it is being made, as visitors do
   * (the router): it is rendered for their role (viewer.ts, roleTemplateOf), and what is one viewer's own is a
   * personal slot there (personal-parts.ts), which `personalParts` fills for each request (the name and CSRF token of
   * the layout are filled by the router). Only for a page whose render depends on nothing else of the viewer.
   */
  sharedByRole?: SharedByRole;
}

/** A page's parts that are one viewer's own, when it is shared by role: HTML by personal slot. */
export interface SharedByRole {
  personalParts(input: PageInput): Promise<Record<string, string>>;
}

/** The page's first read: what the router prefetched (PageDef.prefetch), or the read itself when it prefetched nothing. */
export function firstRead<T>(input: Pick<PageInput, 'prefetched'>, read: () => Promise<T>): Promise<T> {
  return input.prefetched ? (input.prefetched as Promise<T>) : read();
}

export function definePage(def: PageDef): PageDef {
  return def;
}

/** A page of one record, named by the UUID in its path's `{id}`. */
export interface RecordPageDef<T> {
  path: string;
  /** What the record is, for the 404 page: "no such <noun>". */
  noun: string;
  /** The page's first read, prefetched (PageDef.prefetch): the record (and what else needs only its ID), or none. */
  find(db: Db, id: string, query: Record<string, unknown>): Promise<T | null | undefined>;
  render(input: PageInput, record: T): Promise<PageResult>;
  /** See PageDef.sharedByRole. */
  sharedByRole?: SharedByRole;
}

/** A page of one record: a 404 page ("no such …") for an ID that is no UUID or finds nothing, else its render. */
export function defineRecordPage<T>(def: RecordPageDef<T>): PageDef {
  const find = ({ deps, params, query }: Pick<PageInput, 'params' | 'query' | 'deps'>) => (isUuid(params.id) ? def.find(deps.db, params.id, query) : Promise.resolve(undefined));
  return definePage({
    path: def.path,
    prefetch: find,
    sharedByRole: def.sharedByRole,
    async render(input) {
      const record = await firstRead(input, () => find(input));
      return record === undefined || record === null ? { notFound: `no such ${def.noun}` } : def.render(input, record);
    },
  });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a path parameter is a UUID (anything else is a 404 page, never a database error). */
export function isUuid(value: string | undefined): value is string {
  return value !== undefined && UUID.test(value);
}
