import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startTestStack, type TestStack } from '../support/stack';
import { DEFAULT_CONFIG_FILE } from '../../lib/config-file';

describe('admin config file', () => {
  let stack: TestStack;
  let readOnly: string;
  before(async () => {
    stack = await startTestStack({ worker: false });
    readOnly = await stack.keyFor('read-only');
  });
  after(async () => stack?.stop());

  const withSecrets = {
    require_auth_for_reads: true,
    evaluator: { max_concurrent: 3 },
    builds: { default_timeout: 3600, default_max_silent: 600, log_limit_bytes: 1048576 },
    notifications: { github_token: 'ghp_stored_token', max_attempts: 3 },
    github_oauth: { client_id: 'Iv1.abc', client_secret: 'stored-oauth-secret' },
    ldap: { url: 'ldaps://ldap.example.org', base_dn: 'dc=example,dc=org', bind_dn: 'cn=ci', bind_password: 'stored-ldap-password' },
  };

  it('without a config file GET answers the default config as {contents}', async () => {
    assert.equal(fs.existsSync(stack.config.configFile), false);
    const res = await stack.request('GET', '/api/v1/admin/config', { key: stack.adminKey });
    assert.equal(res.status, 200);
    assert.equal(typeof res.body.contents, 'string');
    assert.deepEqual(JSON.parse(res.body.contents), DEFAULT_CONFIG_FILE);
  });

  it('PUT writes the file (mode 0600) and answers it with secrets redacted; GET redacts them too', async () => {
    const text = JSON.stringify(withSecrets, null, 2);
    const res = await stack.request('PUT', '/api/v1/admin/config', { key: stack.adminKey, body: { contents: text } });
    assert.equal(res.status, 200);
    assert.equal(fs.readFileSync(stack.config.configFile, 'utf8'), text);
    assert.equal(fs.statSync(stack.config.configFile).mode & 0o777, 0o600);
    for (const answer of [res, await stack.request('GET', '/api/v1/admin/config', { key: stack.adminKey })]) {
      const shown = JSON.parse(answer.body.contents);
      assert.equal(shown.github_oauth.client_secret, '[redacted]');
      assert.equal(shown.github_oauth.client_id, 'Iv1.abc');
      assert.equal(shown.ldap.bind_password, '[redacted]');
      assert.equal(shown.notifications.github_token, '[redacted]');
      assert.equal(shown.evaluator.max_concurrent, 3);
      for (const secret of ['ghp_stored_token', 'stored-oauth-secret', 'stored-ldap-password']) assert.ok(!answer.text.includes(secret));
    }
    const leftovers = fs.readdirSync(path.dirname(stack.config.configFile)).filter((f) => f.endsWith('.tmp'));
    assert.deepEqual(leftovers, []);
  });

  it('a PUT that sends "[redacted]" back keeps the stored secrets while changing the rest', async () => {
    const shown = JSON.parse((await stack.request('GET', '/api/v1/admin/config', { key: stack.adminKey })).body.contents);
    shown.evaluator.max_concurrent = 5;
    shown.github_oauth.client_id = 'Iv1.new';
    const res = await stack.request('PUT', '/api/v1/admin/config', { key: stack.adminKey, body: { contents: JSON.stringify(shown) } });
    assert.equal(res.status, 200);
    const stored = JSON.parse(fs.readFileSync(stack.config.configFile, 'utf8'));
    assert.equal(stored.evaluator.max_concurrent, 5);
    assert.equal(stored.github_oauth.client_id, 'Iv1.new');
    assert.equal(stored.github_oauth.client_secret, 'stored-oauth-secret');
    assert.equal(stored.ldap.bind_password, 'stored-ldap-password');
    assert.equal(stored.notifications.github_token, 'ghp_stored_token');
  });

  it('a new secret value replaces the stored one', async () => {
    const shown = JSON.parse((await stack.request('GET', '/api/v1/admin/config', { key: stack.adminKey })).body.contents);
    shown.github_oauth.client_secret = 'rotated-secret';
    assert.equal((await stack.request('PUT', '/api/v1/admin/config', { key: stack.adminKey, body: { contents: JSON.stringify(shown) } })).status, 200);
    assert.equal(JSON.parse(fs.readFileSync(stack.config.configFile, 'utf8')).github_oauth.client_secret, 'rotated-secret');
  });

  it('invalid contents are a 400 naming the field, and the file is left as it was', async () => {
    const before = fs.readFileSync(stack.config.configFile, 'utf8');
    const cases: [string, string][] = [
      ['{"require_auth_for_reads": ', 'contents'],
      ['[1, 2]', 'contents'],
      ['{"foo": 1}', 'contents.foo'],
      ['{"evaluator": {"max_concurrent": "many"}}', 'contents.evaluator.max_concurrent'],
      ['{"evaluator": {"max_concurrent": 0}}', 'contents.evaluator.max_concurrent'],
      ['{"builds": {"default_timeout": 1.5}}', 'contents.builds.default_timeout'],
      ['{"github_oauth": {"client_id": "x"}}', 'contents.github_oauth.client_secret'],
      ['{"ldap": {"url": "http://x", "base_dn": "dc=x"}}', 'contents.ldap.url'],
      ['{"require_auth_for_reads": "yes"}', 'contents.require_auth_for_reads'],
    ];
    for (const [contents, field] of cases) {
      const res = await stack.request('PUT', '/api/v1/admin/config', { key: stack.adminKey, body: { contents } });
      assert.equal(res.status, 400, contents);
      assert.equal(res.body.error_code, 'VALIDATION_ERROR');
      assert.equal(res.body.details[0].field, field, contents);
    }
    const missing = await stack.request('PUT', '/api/v1/admin/config', { key: stack.adminKey, body: {} });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.details[0].field, 'body.contents');
    const notText = await stack.request('PUT', '/api/v1/admin/config', { key: stack.adminKey, body: { contents: { evaluator: {} } } });
    assert.equal(notText.body.details[0].field, 'body.contents');
    assert.equal(fs.readFileSync(stack.config.configFile, 'utf8'), before);
  });

  it('"[redacted]" for a secret that is not stored is a 400 naming it', async () => {
    const res = await stack.request('PUT', '/api/v1/admin/config', { key: stack.adminKey, body: { contents: JSON.stringify({ notifications: { gitlab_token: '[redacted]' } }) } });
    assert.equal(res.status, 400);
    assert.equal(res.body.details[0].field, 'contents.notifications.gitlab_token');
  });

  it('without credentials it is a 401, and with a read-only key a 403', async () => {
    assert.equal((await stack.request('GET', '/api/v1/admin/config')).status, 401);
    assert.equal((await stack.request('PUT', '/api/v1/admin/config', { body: { contents: '{}' } })).status, 401);
    const ro = await stack.request('GET', '/api/v1/admin/config', { key: readOnly });
    assert.equal(ro.status, 403);
    assert.equal(ro.body.error_code, 'FORBIDDEN');
    assert.equal((await stack.request('PUT', '/api/v1/admin/config', { key: readOnly, body: { contents: '{}' } })).status, 403);
  });

  it('the audit row of a PUT holds the redacted contents, never a secret', async () => {
    const rows = await stack.db('audit_log').where({ action: 'PUT /api/v1/admin/config' });
    assert.equal(rows.length, 3);
    assert.equal(rows[0].target_kind, 'config');
    assert.equal(typeof rows[0].details.contents, 'string');
    const text = JSON.stringify(rows);
    for (const secret of ['ghp_stored_token', 'stored-oauth-secret', 'stored-ldap-password', 'rotated-secret']) assert.ok(!text.includes(secret), `audit holds ${secret}`);
  });
});
