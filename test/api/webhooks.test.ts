import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { nonce } from '../support/pipeline';
import { secretBoxFor } from '../../lib/secret-box';

describe('project webhooks (register, list, delete)', () => {
  let stack: TestStack;
  let projectId: string;
  let creator: string;
  let readOnly: string;
  let evalJobset: string;
  const secret = `whsec-${nonce()}-${nonce()}`;
  const webhooksOf = (id: string) => `/api/v1/projects/${id}/webhooks`;

  before(async () => {
    stack = await startTestStack({ worker: false });
    [creator, readOnly, evalJobset] = await Promise.all([stack.keyFor('create-projects'), stack.keyFor('read-only'), stack.keyFor('eval-jobset')]);
    const project = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body: { name: `hooks-${nonce()}`, repository_url: 'https://example.org/hooks.git' } });
    assert.equal(project.status, 200, project.text);
    projectId = project.body.id;
  });
  after(async () => stack?.stop());

  it('a create-projects key registers a GitHub webhook: 200 with the Webhook shape, and the secret is not in the answer', async () => {
    const res = await stack.request('POST', webhooksOf(projectId), { key: creator, body: { forge_type: 'github', secret } });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(Object.keys(res.body).sort(), ['created_at', 'enabled', 'forge_type', 'id', 'project_id']);
    assert.equal(res.body.project_id, projectId);
    assert.equal(res.body.forge_type, 'github');
    assert.equal(res.body.enabled, true);
    assert.ok(!res.text.includes(secret));
  });

  it('the secret is stored sealed (v1:…), opens with the server key in the data folder, and that key file is mode 0600', async () => {
    const row = await stack.db('project_webhooks').where({ project_id: projectId, forge_type: 'github' }).first();
    assert.match(row.secret, /^v1:/);
    assert.ok(!row.secret.includes(secret));
    const keyFile = path.join(stack.dataDir, 'secret.key');
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    assert.equal(secretBoxFor(keyFile).open(row.secret), secret);
  });

  it('anyone lists a project’s webhooks as a bare array without secrets', async () => {
    assert.equal((await stack.request('POST', webhooksOf(projectId), { key: stack.adminKey, body: { forge_type: 'gitlab', secret: `${secret}-gl` } })).status, 200);
    const res = await stack.request('GET', webhooksOf(projectId));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.map((w: { forge_type: string }) => w.forge_type), ['github', 'gitlab']);
    assert.ok(res.body.every((w: Record<string, unknown>) => !('secret' in w)));
    assert.ok(!res.text.includes(secret));
  });

  it('a second webhook for the same forge is a 409, and the first keeps its secret', async () => {
    const before = await stack.db('project_webhooks').where({ project_id: projectId, forge_type: 'github' }).first();
    const res = await stack.request('POST', webhooksOf(projectId), { key: creator, body: { forge_type: 'github', secret: 'another-secret' } });
    assert.equal(res.status, 409);
    assert.equal(res.body.error_code, 'CONFLICT');
    assert.equal((await stack.db('project_webhooks').where({ project_id: projectId, forge_type: 'github' }).first()).secret, before.secret);
  });

  it('bad input is a 400 naming the field, and registers nothing', async () => {
    const cases: Array<[unknown, string]> = [
      [{ secret }, 'body.forge_type'],
      [{ forge_type: 'bitbucket', secret }, 'body.forge_type'],
      [{ forge_type: 'gitea' }, 'body.secret'],
      [{ forge_type: 'gitea', secret: 'short' }, 'body.secret'],
      [{ forge_type: 'gitea', secret: 'has\na newline in it' }, 'body.secret'],
      [{ forge_type: 'gitea', secret: ' padded secret ' }, 'body.secret'],
      [{ forge_type: 'gitea', secret: 12345678 }, 'body.secret'],
      [{ forge_type: 'gitea', secret, enabled: false }, 'body.enabled'],
    ];
    for (const [body, field] of cases) {
      const res = await stack.request('POST', webhooksOf(projectId), { key: creator, body });
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
      assert.equal(res.body.error_code, 'VALIDATION_ERROR');
      assert.equal(res.body.details[0].field, field, JSON.stringify(body));
    }
    const malformed = await stack.request('POST', webhooksOf('not-a-uuid'), { key: creator, body: { forge_type: 'gitea', secret } });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.details[0].field, 'params.id');
    const unknown = await stack.request('POST', webhooksOf('00000000-0000-4000-8000-000000000000'), { key: creator, body: { forge_type: 'gitea', secret } });
    assert.equal(unknown.status, 404);
    assert.equal((await stack.request('GET', webhooksOf(projectId))).body.length, 2);
    assert.equal((await stack.request('GET', webhooksOf('00000000-0000-4000-8000-000000000000'))).status, 404);
  });

  it('registering needs create-projects (401 without a key, 403 read-only or eval-jobset); deleting needs admin', async () => {
    assert.equal((await stack.request('POST', webhooksOf(projectId), { body: { forge_type: 'gitea', secret } })).status, 401);
    assert.equal((await stack.request('POST', webhooksOf(projectId), { key: readOnly, body: { forge_type: 'gitea', secret } })).status, 403);
    assert.equal((await stack.request('POST', webhooksOf(projectId), { key: evalJobset, body: { forge_type: 'gitea', secret } })).status, 403);
    const id = (await stack.request('GET', webhooksOf(projectId))).body[1].id;
    assert.equal((await stack.request('DELETE', `${webhooksOf(projectId)}/${id}`)).status, 401);
    assert.equal((await stack.request('DELETE', `${webhooksOf(projectId)}/${id}`, { key: creator })).status, 403);
    assert.equal((await stack.request('GET', webhooksOf(projectId))).body.length, 2);
  });

  it('an admin deletes a webhook (204, empty body); again it is a 404, and under another project a 404', async () => {
    const [github, gitlab] = (await stack.request('GET', webhooksOf(projectId))).body;
    const other = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body: { name: `other-${nonce()}`, repository_url: 'https://example.org/o.git' } });
    assert.equal((await stack.request('DELETE', `${webhooksOf(other.body.id)}/${gitlab.id}`, { key: stack.adminKey })).status, 404);
    const del = await stack.request('DELETE', `${webhooksOf(projectId)}/${gitlab.id}`, { key: stack.adminKey });
    assert.equal(del.status, 204);
    assert.equal(del.text, '');
    assert.equal((await stack.request('DELETE', `${webhooksOf(projectId)}/${gitlab.id}`, { key: stack.adminKey })).status, 404);
    assert.deepEqual((await stack.request('GET', webhooksOf(projectId))).body.map((w: { id: string }) => w.id), [github.id]);
  });

  it('the audit log records registrations and deletions with the forge, never the secret', async () => {
    const rows = await stack.db('audit_log').where({ target_kind: 'webhook' }).orderBy('occurred_at');
    assert.deepEqual(rows.map((r) => r.action), ['POST /api/v1/projects/{id}/webhooks', 'POST /api/v1/projects/{id}/webhooks', 'DELETE /api/v1/projects/{id}/webhooks/{webhook_id}']);
    assert.deepEqual(rows[0].details, { project_id: projectId, forge_type: 'github' });
    const everything = JSON.stringify(await stack.db('audit_log').select('*'));
    assert.ok(!everything.includes(secret));
  });
});
