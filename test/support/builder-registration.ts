import assert from 'node:assert/strict';
import type { TestStack } from './stack';
import type { SshBuilder } from './sshd';
import { localSystem } from '../../activities/nix-system';

export interface RegisteredBuilder {
  id: string;
  fixture: SshBuilder;
}

/**
 * Registers an sshd builder fixture through the admin API, as an operator would: its SSH URI, key file,
 * pinned host key (the fixture's own unless `publicHostKey` pins another), chroot store and this
 * machine's system, `max_jobs` 2 unless told.
 */
export async function registerSshBuilder(stack: TestStack, fixture: SshBuilder, opts: { maxJobs?: number; speedFactor?: number; publicHostKey?: string } = {}): Promise<RegisteredBuilder> {
  const res = await stack.request('POST', '/api/v1/admin/builders', {
    key: stack.adminKey,
    body: {
      name: fixture.spec.name,
      ssh_uri: fixture.spec.sshUri,
      ssh_key_file: fixture.spec.sshKeyFile,
      public_host_key: opts.publicHostKey ?? fixture.spec.publicHostKey,
      remote_store: fixture.spec.remoteStore,
      systems: [await localSystem()],
      max_jobs: opts.maxJobs ?? 2,
      speed_factor: opts.speedFactor ?? 1,
    },
  });
  assert.equal(res.status, 200, res.text);
  return { id: res.body.id, fixture };
}
