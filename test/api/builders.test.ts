import crypto from 'node:crypto';
import { secretBoxFor, secretKeyFileOf } from '../../lib/secret-box';
import { openBuilderKey } from '../../lib/sealed-builder-key';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { findBuilder, listEnabledBuilders } from '../../api/queries/builders';

/** A fresh ed25519 key pair: the private key in PEM, the public one as an OpenSSH line. */
function ed25519KeyPair(): { privateKey: string; publicKeyLine: string } {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const raw = (publicKey.export({ format: 'der', type: 'spki' }) as Buffer).subarray(-32);
  const sshString = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  const blob = Buffer.concat([sshString(Buffer.from('ssh-ed25519')), sshString(raw)]);
  return {
    privateKey: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
    publicKeyLine: `ssh-ed25519 ${blob.toString('base64')} builder@test`,
  };
}

const BUILDER_FIELDS = [
  'id', 'name', 'ssh_uri', 'systems', 'max_jobs', 'speed_factor', 'supported_features', 'mandatory_features', 'enabled',
  'public_host_key', 'ssh_key_file', 'consecutive_failures', 'disabled_until', 'last_failure', 'cpu_cores', 'created_at',
  'remote_store', 'has_ssh_private_key',
];

describe('builders admin', () => {
  let stack: TestStack;
  let readOnly: string;
  const keys = ed25519KeyPair();
  const body = {
    name: 'builder-one',
    ssh_uri: 'ssh://nix@10.0.0.5:2222',
    systems: ['x86_64-linux', 'i686-linux'],
    max_jobs: 4,
    speed_factor: 2,
    supported_features: ['kvm', 'big-parallel'],
    mandatory_features: ['kvm'],
    public_host_key: keys.publicKeyLine,
    ssh_private_key: keys.privateKey,
    cpu_cores: 8,
  };
  let created: Record<string, any>;

  before(async () => {
    stack = await startTestStack({ worker: false });
    readOnly = await stack.keyFor('read-only');
  });
  after(async () => stack?.stop());

  it('an admin registers a builder; the answer has the circus fields and never the private key', async () => {
    const res = await stack.request('POST', '/api/v1/admin/builders', { key: stack.adminKey, body });
    assert.equal(res.status, 200, res.text);
    created = res.body;
    for (const field of BUILDER_FIELDS) assert.ok(field in created, `missing ${field}`);
    assert.equal(created.name, 'builder-one');
    assert.deepEqual(created.systems, ['x86_64-linux', 'i686-linux']);
    assert.equal(created.max_jobs, 4);
    assert.equal(created.speed_factor, 2);
    assert.equal(created.enabled, true);
    assert.equal(created.consecutive_failures, 0);
    assert.equal(created.disabled_until, null);
    assert.equal(created.has_ssh_private_key, true);
    assert.ok(!('ssh_private_key' in created));
    assert.ok(!res.text.includes('PRIVATE KEY'));
  });

  it('the private key is stored for the worker sealed with the server key, and opens to the key sent', async () => {
    const row = await findBuilder(stack.db, created.id);
    assert.ok(!row?.ssh_private_key?.includes('PRIVATE KEY'), 'not stored in plaintext');
    assert.equal(openBuilderKey(row!.ssh_private_key, secretBoxFor(secretKeyFileOf(stack.config))), keys.privateKey);
    const enabled = await listEnabledBuilders(stack.db);
    assert.ok(enabled.some((b) => b.id === created.id));
  });

  it('reads never return the private key', async () => {
    const list = await stack.request('GET', '/api/v1/admin/builders', { key: stack.adminKey });
    assert.equal(list.status, 200);
    assert.ok(Array.isArray(list.body), 'a bare array');
    assert.ok(list.body.some((b: any) => b.id === created.id && b.has_ssh_private_key === true));
    assert.ok(!list.text.includes('PRIVATE KEY'));
    const one = await stack.request('GET', `/api/v1/admin/builders/${created.id}`, { key: stack.adminKey });
    assert.equal(one.status, 200);
    assert.equal(one.body.name, 'builder-one');
    assert.ok(!one.text.includes('PRIVATE KEY'));
  });

  it('the audit row of a create or update holds no private key', async () => {
    await stack.request('PUT', `/api/v1/admin/builders/${created.id}`, { key: stack.adminKey, body: { ssh_private_key: keys.privateKey } });
    const rows = await stack.db('audit_log').where({ target_kind: 'builder', target_id: created.id });
    assert.ok(rows.length >= 2);
    const text = JSON.stringify(rows);
    assert.ok(!text.includes('PRIVATE KEY'), text);
    assert.ok(!text.includes(keys.privateKey.split('\n')[1]));
    const create = rows.find((r) => r.action === 'POST /api/v1/admin/builders');
    assert.equal(create.details.name, 'builder-one');
    assert.equal(create.details.ssh_private_key_changed, true);
  });

  it('every builders route needs the admin role', async () => {
    for (const [method, path] of [
      ['GET', '/api/v1/admin/builders'],
      ['GET', `/api/v1/admin/builders/${created.id}`],
      ['GET', '/api/v1/admin/builders/sessions'],
      ['GET', '/api/v1/admin/builders/sessions/connected'],
      ['GET', '/api/v1/admin/builders/sessions/some-machine'],
    ]) {
      assert.equal((await stack.request(method, path)).status, 401, `${method} ${path} anonymous`);
      assert.equal((await stack.request(method, path, { key: readOnly })).status, 403, `${method} ${path} read-only`);
    }
    const post = await stack.request('POST', '/api/v1/admin/builders', { key: readOnly, body: { ...body, name: 'ro' } });
    assert.equal(post.status, 403);
    const put = await stack.request('PUT', `/api/v1/admin/builders/${created.id}`, { key: readOnly, body: { max_jobs: 9 } });
    assert.equal(put.status, 403);
    const del = await stack.request('DELETE', `/api/v1/admin/builders/${created.id}`, { key: readOnly });
    assert.equal(del.status, 403);
    assert.equal((await findBuilder(stack.db, created.id))?.max_jobs, 4);
  });

  it('a duplicate name is a 409', async () => {
    const res = await stack.request('POST', '/api/v1/admin/builders', { key: stack.adminKey, body });
    assert.equal(res.status, 409);
    assert.equal(res.body.error_code, 'CONFLICT');
  });

  it('bad fields are 400s naming the field, and nothing is written', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ ssh_uri: 'nix@host' }, 'body.ssh_uri'],
      [{ ssh_uri: 'ssh://nix@host:99999' }, 'body.ssh_uri'],
      [{ ssh_uri: 'ssh://nix@host/; rm -rf /' }, 'body.ssh_uri'],
      [{ systems: [] }, 'body.systems'],
      [{ systems: ['not a system'] }, 'body.systems.0'],
      [{ max_jobs: 0 }, 'body.max_jobs'],
      [{ speed_factor: 0 }, 'body.speed_factor'],
      [{ supported_features: ['kvm'], mandatory_features: ['kvm', 'benchmark'] }, 'body.mandatory_features'],
      [{ public_host_key: 'not a key' }, 'body.public_host_key'],
      [{ public_host_key: 'ssh-ed25519 AAAAnotbase64!!' }, 'body.public_host_key'],
      [{ ssh_private_key: 'hunter2' }, 'body.ssh_private_key'],
      [{ ssh_key_file: 'relative/key' }, 'body.ssh_key_file'],
      [{ name: 'has spaces' }, 'body.name'],
      [{ colour: 'red' }, 'body.colour'],
    ];
    for (const [change, field] of cases) {
      const res = await stack.request('POST', '/api/v1/admin/builders', { key: stack.adminKey, body: { ...body, name: 'bad-one', ...change } });
      assert.equal(res.status, 400, `${JSON.stringify(change)} → ${res.status} ${res.text}`);
      assert.equal(res.body.error_code, 'VALIDATION_ERROR');
      assert.equal(res.body.details[0].field, field, JSON.stringify(change));
    }
    const missing = await stack.request('POST', '/api/v1/admin/builders', { key: stack.adminKey, body: { name: 'x' } });
    assert.equal(missing.status, 400);
    assert.ok(missing.body.details.some((d: any) => d.field === 'body.ssh_uri'));
    assert.equal(await stack.db('remote_builders').where({ name: 'bad-one' }).first(), undefined);
  });

  it('accepts a base64-wrapped host key (Hydra machines-file style), IPv6 hosts and no port', async () => {
    const res = await stack.request('POST', '/api/v1/admin/builders', {
      key: stack.adminKey,
      body: { name: 'builder-two', ssh_uri: 'ssh://[::1]', systems: ['aarch64-linux'], public_host_key: Buffer.from(keys.publicKeyLine).toString('base64') },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.has_ssh_private_key, false);
    assert.equal(res.body.max_jobs, 1);
    const hostOnly = await stack.request('POST', '/api/v1/admin/builders', {
      key: stack.adminKey,
      body: { name: 'builder-three', ssh_uri: 'ssh://build-box.example.org', systems: ['x86_64-darwin'], remote_store: 'ssh-ng://build-box' },
    });
    assert.equal(hostOnly.status, 200, hostOnly.text);
    assert.equal(hostOnly.body.remote_store, 'ssh-ng://build-box');
  });

  it('PUT changes fields and checks mandatory ⊆ supported against the stored row', async () => {
    const res = await stack.request('PUT', `/api/v1/admin/builders/${created.id}`, { key: stack.adminKey, body: { max_jobs: 6, speed_factor: 1.5 } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.max_jobs, 6);
    assert.equal(res.body.speed_factor, 1.5);
    assert.deepEqual(res.body.supported_features, ['kvm', 'big-parallel']);
    const bad = await stack.request('PUT', `/api/v1/admin/builders/${created.id}`, { key: stack.adminKey, body: { supported_features: ['big-parallel'] } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.details[0].field, 'body.supported_features');
    assert.deepEqual((await findBuilder(stack.db, created.id))?.supported_features, ['kvm', 'big-parallel']);
    const empty = await stack.request('PUT', `/api/v1/admin/builders/${created.id}`, { key: stack.adminKey, body: {} });
    assert.equal(empty.status, 400);
    const clash = await stack.request('PUT', `/api/v1/admin/builders/${created.id}`, { key: stack.adminKey, body: { name: 'builder-two' } });
    assert.equal(clash.status, 409);
  });

  it('a builder disabled after failures is re-enabled by {"enabled": true}, which clears the failures', async () => {
    const until = new Date(Date.now() + 3_600_000);
    await stack.db('remote_builders').where({ id: created.id }).update({ consecutive_failures: 5, disabled_until: until, last_failure: 'ssh: connection refused' });
    assert.ok(!(await listEnabledBuilders(stack.db)).some((b) => b.id === created.id), 'a builder in back-off is not offered');
    const res = await stack.request('PUT', `/api/v1/admin/builders/${created.id}`, { key: stack.adminKey, body: { enabled: true } });
    assert.equal(res.status, 200);
    assert.equal(res.body.consecutive_failures, 0);
    assert.equal(res.body.disabled_until, null);
    assert.equal(res.body.last_failure, 'ssh: connection refused', 'the last failure stays for the record');
    assert.ok((await listEnabledBuilders(stack.db)).some((b) => b.id === created.id));
    const reset = await stack.request('PUT', `/api/v1/admin/builders/${created.id}`, { key: stack.adminKey, body: { consecutive_failures: 2, disabled_until: null } });
    assert.equal(reset.body.consecutive_failures, 2);
    const off = await stack.request('PUT', `/api/v1/admin/builders/${created.id}`, { key: stack.adminKey, body: { enabled: false } });
    assert.equal(off.body.enabled, false);
    assert.ok(!(await listEnabledBuilders(stack.db)).some((b) => b.id === created.id));
  });

  it('a PUT may clear the stored private key with null', async () => {
    const res = await stack.request('PUT', `/api/v1/admin/builders/${created.id}`, { key: stack.adminKey, body: { ssh_private_key: null } });
    assert.equal(res.status, 200);
    assert.equal(res.body.has_ssh_private_key, false);
    assert.equal((await findBuilder(stack.db, created.id))?.ssh_private_key, null);
  });

  it('unknown ids are 404, bad ids 400, and DELETE answers 204', async () => {
    const unknown = crypto.randomUUID();
    assert.equal((await stack.request('GET', `/api/v1/admin/builders/${unknown}`, { key: stack.adminKey })).status, 404);
    assert.equal((await stack.request('PUT', `/api/v1/admin/builders/${unknown}`, { key: stack.adminKey, body: { max_jobs: 2 } })).status, 404);
    assert.equal((await stack.request('GET', '/api/v1/admin/builders/nope', { key: stack.adminKey })).status, 400);
    const del = await stack.request('DELETE', `/api/v1/admin/builders/${created.id}`, { key: stack.adminKey });
    assert.equal(del.status, 204);
    assert.equal(del.text, '');
    assert.equal((await stack.request('GET', `/api/v1/admin/builders/${created.id}`, { key: stack.adminKey })).status, 404);
    assert.equal((await stack.request('DELETE', `/api/v1/admin/builders/${created.id}`, { key: stack.adminKey })).status, 404);
  });

  it('builder sessions: all, connected (seen within 2 minutes), and one by machine_id', async () => {
    const now = Date.now();
    await stack.db('builder_sessions').insert([
      { machine_id: 'm-live', name: 'agent-live', hostname: 'live.local', systems: ['x86_64-linux'], connected: true, last_seen: new Date(now - 10_000), cpu_count: 4, max_jobs: 2, current_jobs: 1, load1: 0.5, mem_total: 8_000_000_000, builds_succeeded: 3 },
      { machine_id: 'm-stale', name: 'agent-stale', systems: ['x86_64-linux'], connected: true, last_seen: new Date(now - 10 * 60_000) },
      { machine_id: 'm-gone', name: 'agent-gone', systems: ['aarch64-linux'], connected: false, last_seen: new Date(now - 5_000) },
    ]);
    const all = await stack.request('GET', '/api/v1/admin/builders/sessions', { key: stack.adminKey });
    assert.equal(all.status, 200);
    assert.deepEqual(all.body.map((s: any) => s.machine_id).sort(), ['m-gone', 'm-live', 'm-stale']);
    for (const field of [
      'machine_id', 'name', 'hostname', 'systems', 'supported_features', 'mandatory_features', 'speed_factor', 'cpu_count', 'max_jobs',
      'current_jobs', 'last_seen', 'load1', 'load5', 'load15', 'mem_total', 'mem_used', 'store_free', 'connected', 'builds_succeeded',
      'builds_failed', 'consecutive_failures', 'disabled_until', 'created_at', 'updated_at',
    ]) {
      assert.ok(field in all.body[0], `missing ${field}`);
    }
    const connected = await stack.request('GET', '/api/v1/admin/builders/sessions/connected', { key: stack.adminKey });
    assert.deepEqual(connected.body.map((s: any) => s.machine_id), ['m-live']);
    const one = await stack.request('GET', '/api/v1/admin/builders/sessions/m-live', { key: stack.adminKey });
    assert.equal(one.status, 200);
    assert.equal(one.body.hostname, 'live.local');
    assert.equal(one.body.mem_total, 8_000_000_000);
    assert.equal(one.body.builds_succeeded, 3);
    const missing = await stack.request('GET', '/api/v1/admin/builders/sessions/m-unknown', { key: stack.adminKey });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error_code, 'NOT_FOUND');
  });
});
