import crypto from 'node:crypto';
import type { ForgeType } from './forge-event';

/**
 * Checks that a delivery comes from the forge that knows the webhook's secret, over the raw body, in
 * constant time:
 * - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256>`, with @octokit/webhooks-methods;
 * - Gitea: `X-Gitea-Signature: <hex HMAC-SHA256>`;
 * - Forgejo: `X-Forgejo-Signature` (it also sends the same value as `X-Gitea-Signature`);
 * - GitLab: `X-Gitlab-Token` is the secret itself.
 */

export const SIGNATURE_HEADERS: Record<ForgeType, string> = {
  github: 'x-hub-signature-256',
  gitlab: 'x-gitlab-token',
  gitea: 'x-gitea-signature',
  forgejo: 'x-forgejo-signature',
};

type Octokit = typeof import('@octokit/webhooks-methods');
let octokit: Promise<Octokit> | undefined;
// The package is ESM-only; the API runs as CommonJS, so it is loaded with import() once.
const octokitMethods = (): Promise<Octokit> => (octokit ??= import('@octokit/webhooks-methods'));

/** Equal strings in constant time: compares SHA-256 digests, so lengths never leak or throw. */
function sameSecret(given: string, expected: string): boolean {
  const a = crypto.createHash('sha256').update(given, 'utf8').digest();
  const b = crypto.createHash('sha256').update(expected, 'utf8').digest();
  return crypto.timingSafeEqual(a, b);
}

function hexHmacMatches(secret: string, rawBody: Buffer, signature: string): boolean {
  if (!/^[0-9a-fA-F]{64}$/.test(signature)) return false;
  const expected = crypto.createHmac('sha256', secret).update(rawBody).digest();
  return crypto.timingSafeEqual(expected, Buffer.from(signature, 'hex'));
}

export async function signatureIsValid(forge: ForgeType, secret: string, rawBody: Buffer, header: string | undefined): Promise<boolean> {
  if (!header) return false;
  switch (forge) {
    case 'github': {
      if (!/^sha256=[0-9a-fA-F]{64}$/.test(header)) return false;
      const { verify } = await octokitMethods();
      // verify() takes the payload as a string and signs its UTF-8 bytes: only a body that is valid UTF-8
      // round-trips to exactly the bytes received, and GitHub sends nothing else.
      const payload = rawBody.toString('utf8');
      if (!Buffer.from(payload, 'utf8').equals(rawBody)) return false;
      return verify(secret, payload, header).catch(() => false);
    }
    case 'gitea':
    case 'forgejo':
      return hexHmacMatches(secret, rawBody, header.trim());
    case 'gitlab':
      return sameSecret(header, secret);
  }
}
