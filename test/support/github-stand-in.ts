import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small GitHub for OAuth tests, because the test machine has no internet: a real HTTP server on a
 * free loopback port serving what Ringmaster's GitHub sign-in asks for, shaped as GitHub's docs say
 * ("Authorizing OAuth apps", REST "Users" and "Emails"):
 * - GET  /login/oauth/authorize: the user "approves" (302 back with code and state) or denies
 *   (302 back with error=access_denied), as `decision` says;
 * - POST /login/oauth/access_token: a form with client_id, client_secret, code, redirect_uri; answers
 *   JSON when asked (else form-encoded); a wrong or reused code is 200 with error=bad_verification_code;
 * - GET  /api/v3/user, /api/v3/user/emails, /api/v3/user/orgs: GitHub Enterprise's API prefix, with
 *   `Authorization: Bearer <token>`.
 * `outage` makes every answer a 503 (GitHub down), `apiOutage` only the API's; `close()` makes it unreachable.
 */
export interface GithubStandInUser {
  id: number;
  login: string;
  name: string | null;
  emails: Array<{ email: string; primary: boolean; verified: boolean }>;
  orgs: string[];
}

export interface GithubStandIn {
  url: string;
  clientId: string;
  clientSecret: string;
  authorizeUrl: string;
  tokenUrl: string;
  apiUrl: string;
  /** Who approves the next authorize request. */
  user: GithubStandInUser;
  decision: 'approve' | 'deny';
  outage: boolean;
  /** Only the REST API (/api/v3) answers 503: GitHub fails after the code exchange. */
  apiOutage: boolean;
  /** Every request, e.g. to check the query Ringmaster sent to authorize. */
  requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }>;
  close(): Promise<void>;
}

export async function startGithubStandIn(user: GithubStandInUser): Promise<GithubStandIn> {
  const clientId = `Iv1.${crypto.randomBytes(8).toString('hex')}`;
  const clientSecret = crypto.randomBytes(20).toString('hex');
  const codes = new Map<string, { user: GithubStandInUser; redirectUri: string }>();
  const tokens = new Map<string, GithubStandInUser>();

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      standIn.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const url = new URL(req.url ?? '/', 'http://stand-in');
      const json = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify(value));
      };
      if (standIn.outage) return json(503, { message: 'Service Unavailable' });

      if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') {
        const back = new URL(url.searchParams.get('redirect_uri') ?? '');
        if (url.searchParams.get('client_id') !== clientId) return json(404, { message: 'unknown client_id' });
        if (standIn.decision === 'deny') {
          back.searchParams.set('error', 'access_denied');
          back.searchParams.set('error_description', 'The user has denied your application access.');
        } else {
          const code = crypto.randomBytes(10).toString('hex');
          codes.set(code, { user: standIn.user, redirectUri: back.toString() });
          back.searchParams.set('code', code);
        }
        back.searchParams.set('state', url.searchParams.get('state') ?? '');
        res.writeHead(302, { location: back.toString() });
        return res.end();
      }

      if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
        const form = new URLSearchParams(body);
        const wantsJson = (req.headers.accept ?? '').includes('application/json');
        const answer = (value: Record<string, string>) => {
          if (wantsJson) return json(200, value);
          res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded' });
          res.end(new URLSearchParams(value).toString());
        };
        if (form.get('client_id') !== clientId || form.get('client_secret') !== clientSecret) {
          return answer({ error: 'incorrect_client_credentials', error_description: 'The client_id and/or client_secret passed are incorrect.' });
        }
        const grant = codes.get(form.get('code') ?? '');
        codes.delete(form.get('code') ?? '');
        if (!grant || grant.redirectUri !== form.get('redirect_uri')) {
          return answer({ error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' });
        }
        const token = `gho_${crypto.randomBytes(18).toString('hex')}`;
        tokens.set(token, grant.user);
        return answer({ access_token: token, token_type: 'bearer', scope: 'read:user,user:email' });
      }

      const bearer = /^(?:Bearer|token) (\S+)$/i.exec(req.headers.authorization ?? '');
      const who = bearer ? tokens.get(bearer[1]) : undefined;
      if (url.pathname.startsWith('/api/v3/')) {
        if (standIn.apiOutage) return json(503, { message: 'Service Unavailable' });
        if (!who) return json(401, { message: 'Bad credentials' });
        if (url.pathname === '/api/v3/user') return json(200, { id: who.id, login: who.login, name: who.name, type: 'User' });
        if (url.pathname === '/api/v3/user/emails') return json(200, who.emails.map((e) => ({ ...e, visibility: e.primary ? 'private' : null })));
        if (url.pathname === '/api/v3/user/orgs') return json(200, who.orgs.map((login, i) => ({ login, id: 1000 + i })));
      }
      json(404, { message: 'Not Found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const standIn: GithubStandIn = {
    url: base,
    clientId,
    clientSecret,
    authorizeUrl: `${base}/login/oauth/authorize`,
    tokenUrl: `${base}/login/oauth/access_token`,
    apiUrl: `${base}/api/v3`,
    user,
    decision: 'approve',
    outage: false,
    apiOutage: false,
    requests: [],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return standIn;
}
