import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Real forge payloads for the webhook tests: GitHub's from `@octokit/webhooks-examples`, GitLab's, Gitea's and
 * Forgejo's from test/fixtures/webhooks (written from their documentation), and the signatures each forge sends.
 */

export const WEBHOOK_FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'webhooks');

export interface GithubExample {
  event: 'push' | 'pull_request';
  /** e.g. "push #3 refs/tags/simple-tag" or "pull_request #12 opened" */
  label: string;
  payload: Record<string, any>;
}

/** Every `push` and `pull_request` example of @octokit/webhooks-examples, in the package's order. */
export function githubExamples(): GithubExample[] {
  const index = JSON.parse(fs.readFileSync(require.resolve('@octokit/webhooks-examples'), 'utf8')) as Array<{ name: string; examples: Record<string, any>[] }>;
  const out: GithubExample[] = [];
  for (const entry of index) {
    if (entry.name !== 'push' && entry.name !== 'pull_request') continue;
    entry.examples.forEach((payload, i) => {
      const detail = entry.name === 'push' ? `${payload.ref}${payload.deleted ? ' (deleted)' : ''}` : `${payload.action}${payload.pull_request?.draft ? ' (draft)' : ''}`;
      out.push({ event: entry.name as GithubExample['event'], label: `${entry.name} #${i} ${detail}`, payload });
    });
  }
  return out;
}

/** A fixture payload's bytes, exactly as stored. */
export function fixturePayload(relative: string): Buffer {
  return fs.readFileSync(path.join(WEBHOOK_FIXTURES, relative));
}

export function hexHmac(secret: string, body: Buffer | string): string {
  return crypto.createHmac('sha256', secret).update(body).digest('hex');
}

/** `X-Hub-Signature-256` as GitHub sends it. */
export function githubSignature(secret: string, body: Buffer | string): string {
  return `sha256=${hexHmac(secret, body)}`;
}

/** The body with one byte changed (a character of the middle flipped to another printable one). */
export function tampered(body: Buffer): Buffer {
  const copy = Buffer.from(body);
  const i = Math.floor(copy.length / 2);
  copy[i] = copy[i] === 0x61 ? 0x62 : 0x61;
  return copy;
}

export interface DeliveryResponse {
  status: number;
  body: Record<string, any>;
  headers: Headers;
}

/** POSTs a payload's exact bytes to a project's receiver for `forge`, with the forge's headers. */
export async function deliver(apiUrl: string, projectId: string, forge: string, body: Buffer, headers: Record<string, string>): Promise<DeliveryResponse> {
  const res = await fetch(`${apiUrl}/api/v1/webhooks/${projectId}/${forge}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    // The exact bytes, as a Uint8Array view (fetch's BodyInit type with the DOM lib does not take Buffer).
    body: new Uint8Array(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {}, headers: res.headers };
}
