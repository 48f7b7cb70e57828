import type { ApiResponse, TestStack } from './stack';
import { SESSION_COOKIE } from '../../api/queries/sessions';

export interface BrowserSession {
  /** The Cookie header value to send back. */
  cookie: string;
  csrfToken: string;
  /** The raw Set-Cookie header of the login answer. */
  setCookie: string;
  login: ApiResponse;
}

/** Signs in with a password like a browser would, and keeps the session cookie and CSRF token. */
export async function signIn(stack: TestStack, username: string, password: string): Promise<BrowserSession> {
  const login = await stack.request('POST', '/api/v1/auth/login', { body: { username, password } });
  if (login.status !== 200) throw new Error(`login as ${username} answered ${login.status}: ${login.text}`);
  const setCookie = login.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`));
  if (!setCookie) throw new Error(`login set no ${SESSION_COOKIE} cookie`);
  return { cookie: setCookie.split(';')[0], csrfToken: login.body.csrf_token, setCookie, login };
}

/** Headers for a request made with the session: the cookie, and the CSRF header unless told not to. */
export function sessionHeaders(session: BrowserSession, withCsrf = true): Record<string, string> {
  return withCsrf ? { cookie: session.cookie, 'x-csrf-token': session.csrfToken } : { cookie: session.cookie };
}
