import crypto from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type ApiResponse, type RequestOptions, type TestStack } from '../support/stack';
import { githubExamples, githubSignature } from '../support/forge-payloads';
import { createLogger } from '../../lib/logger';
import { freePort } from '../../lib/processes';

/**
 * One run that creates and uses every kind of secret — an API key, a user's password (and a changed
 * one), a builder's SSH private key, a webhook secret, a forge token in the config file — while every
 * line written to stdout and stderr (the API's and the worker's logs run in this process) and every
 * HTTP response is kept. Then none of the secrets may appear in a log line, nor in any response after
 * the one that created it (only an API key is shown, once, in its creation response).
 */
describe('no secret in any log line or response', () => {
  let stack: TestStack;
  const logLines: string[] = [];
  const responses: Array<{ what: string; text: string }> = [];
  const secrets: Array<{ kind: string; value: string; createdAt: number }> = [];
  const restore: Array<() => void> = [];

  const tee = (stream: NodeJS.WriteStream) => {
    const original = stream.write.bind(stream);
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      logLines.push(...String(chunk).split('\n').filter(Boolean));
      return (original as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stream.write;
    restore.push(() => { stream.write = original as typeof stream.write; });
  };

  /** A request whose response is kept; returns the response and its index. */
  const call = async (method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse> => {
    const res = await stack.request(method, path, opts);
    const lines: string[] = [];
    res.headers.forEach((v, k) => lines.push(`${k}: ${v}`));
    const headers = lines.join('\n');
    responses.push({ what: `${method} ${path} → ${res.status}`, text: `${headers}\n\n${res.text}` });
    return res;
  };
  const secret = (kind: string, value: string) => secrets.push({ kind, value, createdAt: responses.length });

  before(async () => {
    tee(process.stdout);
    tee(process.stderr);
    const workerLog = new Writable({ write(chunk, _enc, done) { logLines.push(...String(chunk).split('\n').filter(Boolean)); done(); } });
    stack = await startTestStack({ logger: createLogger({ destination: workerLog, level: 'debug' }) });
  });
  after(async () => {
    await stack?.stop();
    for (const r of restore) r();
  });

  it('creates and uses each secret', async () => {
    const admin = { key: stack.adminKey };
    // An API key: shown once, in its creation response; then used.
    const created = await call('POST', '/api/v1/api-keys', { ...admin, body: { name: 'leak-check', role: 'admin' } });
    assert.equal(created.status, 200, created.text);
    secrets.push({ kind: 'API key', value: created.body.key, createdAt: responses.length });
    assert.equal((await call('GET', '/api/v1/projects', { key: created.body.key })).status, 200);

    // A password, used to sign in, then changed.
    const password = `pw-${crypto.randomBytes(9).toString('hex')}`;
    secret('password', password);
    const user = await call('POST', '/api/v1/users', { ...admin, body: { username: 'leaky', email: 'leaky@example.org', password, role: 'admin' } });
    assert.equal(user.status, 200, user.text);
    const login = await call('POST', '/api/v1/auth/login', { body: { username: 'leaky', password } });
    assert.equal(login.status, 200, login.text);
    const cookie = login.headers.getSetCookie()[0].split(';')[0];
    const session = { cookie, 'x-csrf-token': login.body.csrf_token };
    const newPassword = `pw-${crypto.randomBytes(9).toString('hex')}`;
    secret('changed password', newPassword);
    const changed = await call('POST', '/api/v1/me/password', { headers: session, body: { current_password: password, new_password: newPassword } });
    assert.ok(changed.status < 300, changed.text);
    assert.equal((await call('POST', '/api/v1/auth/login', { body: { username: 'leaky', password: 'not-the-password' } })).status, 401);

    // A builder's SSH private key, used by a check (the builder does not answer: the check fails).
    const privateKey = crypto.generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    secret('SSH private key', privateKey.split('\n')[1]);
    const builder = await call('POST', '/api/v1/admin/builders', {
      ...admin, body: { name: 'leaky-builder', ssh_uri: `ssh://nix@127.0.0.1:${await freePort()}`, systems: ['x86_64-linux'], ssh_private_key: privateKey },
    });
    assert.equal(builder.status, 200, builder.text);
    const checked = await call('GET', `/api/v1/admin/builders/${builder.body.id}?check=true`, admin);
    assert.equal(checked.status, 200, checked.text);
    assert.equal(checked.body.check.status, 'failed', 'the key was used for a connection that failed');

    // A webhook secret, used to verify a signed delivery.
    const project = await call('POST', '/api/v1/projects', { ...admin, body: { name: 'leaky', repository_url: 'file:///srv/leaky' } });
    const webhookSecret = `whsec-${crypto.randomBytes(12).toString('hex')}`;
    secret('webhook secret', webhookSecret);
    assert.equal((await call('POST', `/api/v1/projects/${project.body.id}/webhooks`, { ...admin, body: { forge_type: 'github', secret: webhookSecret } })).status, 200);
    const push = githubExamples().find((e) => e.event === 'push')!;
    const body = JSON.stringify(push.payload);
    const delivery = await call('POST', `/api/v1/webhooks/${project.body.id}/github`, {
      rawBody: body,
      headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': crypto.randomUUID(), 'x-hub-signature-256': githubSignature(webhookSecret, body) },
    });
    assert.notEqual(delivery.status, 401, `the signature made with the secret is accepted: ${delivery.text}`);

    // A forge token in the config file, written through the API and read back.
    const forgeToken = `ghp_${crypto.randomBytes(18).toString('hex')}`;
    secret('forge token', forgeToken);
    const put = await call('PUT', '/api/v1/admin/config', { ...admin, body: { contents: JSON.stringify({ notifications: { github_token: forgeToken } }) } });
    assert.ok(put.status < 300, put.text);

    // Everything an admin can read back about them.
    for (const path of ['/api/v1/admin/config', '/api/v1/admin/audit-log', '/api/v1/admin/builders', `/api/v1/projects/${project.body.id}/webhooks`, '/api/v1/users', '/api/v1/api-keys', '/api/v1/me']) {
      assert.equal((await call('GET', path, admin)).status, 200, path);
    }
  });

  it('finds none of them in any log line, nor in any response after the one that created it', () => {
    assert.ok(logLines.length > 0, 'log lines were captured');
    assert.ok(responses.length > 15, 'responses were captured');
    assert.equal(secrets.length, 6);
    for (const { kind, value, createdAt } of secrets) {
      const forms = [value, JSON.stringify(value).slice(1, -1)];
      const inLog = logLines.find((l) => forms.some((f) => l.includes(f)));
      assert.equal(inLog, undefined, `the ${kind} appears in a log line`);
      const inResponse = responses.slice(createdAt).find((r) => forms.some((f) => r.text.includes(f)));
      assert.equal(inResponse?.what, undefined, `the ${kind} appears in a response`);
    }
  });
});
