import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { startSshBuilder, type SshBuilder } from '../support/sshd';
import { localSystem } from '../../activities/nix-system';

/*
 * The builder check on real sshd builders with chroot stores: one whose Nix has the sandbox paths a
 * chroot store needs for /bin/sh builders, and one without them.
 */
describe('the builder check', () => {
  let stack: TestStack;
  let configured: SshBuilder;
  let misconfigured: SshBuilder;
  const ids: Record<string, string> = {};

  before(async () => {
    stack = await startTestStack({ worker: true });
    [configured, misconfigured] = await Promise.all([
      startSshBuilder({ name: 'configured' }),
      startSshBuilder({ name: 'no-sandbox-paths', sandboxPaths: false }),
    ]);
    const system = await localSystem();
    for (const b of [configured, misconfigured]) {
      const res = await stack.request('POST', '/api/v1/admin/builders', {
        key: stack.adminKey,
        body: { name: b.spec.name, ssh_uri: b.spec.sshUri, ssh_key_file: b.spec.sshKeyFile, public_host_key: b.spec.publicHostKey, remote_store: b.spec.remoteStore, systems: [system], max_jobs: 1 },
      });
      assert.equal(res.status, 200, res.text);
      ids[b.spec.name] = res.body.id;
    }
  });
  after(async () => {
    await stack?.stop();
    await Promise.allSettled([configured?.stop(), misconfigured?.stop()]);
  });

  it('a builder never checked shows no check', async () => {
    const res = await stack.request('GET', `/api/v1/admin/builders/${ids.configured}`, { key: stack.adminKey });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.check, null);
  });

  it('a builder with sandbox-paths builds the trivial derivation and passes', { timeout: 240_000 }, async () => {
    const res = await stack.request('GET', `/api/v1/admin/builders/${ids.configured}?check=true`, { key: stack.adminKey });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.check.status, 'passed', res.body.check.error);
    assert.equal(res.body.check.error, null);
    assert.ok(res.body.check.checked_at);
  });

  it("a chroot-store builder without sandbox-paths fails the check with Nix's reason", { timeout: 240_000 }, async () => {
    const res = await stack.request('GET', `/api/v1/admin/builders/${ids['no-sandbox-paths']}?check=true`, { key: stack.adminKey });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.check.status, 'failed');
    assert.match(res.body.check.error, /executing '\/bin\/sh': No such file or directory/);
  });

  it('the outcome stays on the builder for a plain GET, and a check is not a builder failure', async () => {
    const res = await stack.request('GET', `/api/v1/admin/builders/${ids['no-sandbox-paths']}`, { key: stack.adminKey });
    assert.equal(res.body.check.status, 'failed');
    assert.equal(res.body.consecutive_failures, 0);
    assert.equal(res.body.disabled_until, null);
  });

  it('changing how the builder is reached clears the stale check', async () => {
    const res = await stack.request('PUT', `/api/v1/admin/builders/${ids['no-sandbox-paths']}`, { key: stack.adminKey, body: { remote_store: misconfigured.spec.remoteStore } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.check, null);
  });

  it('check must be a boolean', async () => {
    const res = await stack.request('GET', `/api/v1/admin/builders/${ids.configured}?check=maybe`, { key: stack.adminKey });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.error_code, 'VALIDATION_ERROR');
    assert.ok(res.body.details.some((d: { field: string }) => d.field.includes('check')), JSON.stringify(res.body.details));
  });
});
