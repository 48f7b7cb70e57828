import type { ComponentChildren } from 'preact';
import { NAV } from './nav';
import type { Viewer } from './viewer';

export interface LayoutProps {
  title: string;
  viewer: Viewer;
  /** The nav entry to mark as the current page. */
  current?: string;
  /** What the header's search box holds (the search page's query). */
  search?: string;
  children: ComponentChildren;
}

/** Every page's frame: head, navigation, who is signed in, and the one stylesheet and script. */
export function Layout({ title, viewer, current, search, children }: LayoutProps) {
  const user = viewer.principal;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="color-scheme" content="light dark" />
        {viewer.csrfToken ? <meta name="csrf-token" content={viewer.csrfToken} /> : null}
        <title>{`${title} · Ringmaster`}</title>
        <link rel="stylesheet" href="/static/dashboard.css" />
        <script src="/static/dashboard.js" defer />
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
          <a class="brand" href="/">Ringmaster</a>
          <nav aria-label="Main">
            <ul>
              {NAV.filter((e) => !e.shown || e.shown(viewer)).map((e) => (
                <li>
                  <a href={e.href} aria-current={current === e.href ? 'page' : undefined}>
                    {e.label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
          <form class="quick-search" role="search" method="get" action="/search">
            <label for="quick-search" class="sr-only">
              Search jobs, projects and builds
            </label>
            <input id="quick-search" type="search" name="q" placeholder="Search" maxLength={200} value={search} />
            <button type="submit">Search</button>
          </form>
          <div class="who">
            {user ? (
              <form method="post" action="/logout" class="inline">
                <span>
                  {user.name} <span class="role">({user.role})</span>
                </span>{' '}
                <input type="hidden" name="csrf_token" value={viewer.csrfToken ?? ''} />
                <button type="submit" class="link">
                  Sign out
                </button>
              </form>
            ) : (
              <a href="/login">Sign in</a>
            )}
          </div>
        </header>
        <main id="main">
          <h1>{title}</h1>
          {children}
        </main>
      </body>
    </html>
  );
}
