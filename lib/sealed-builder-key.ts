import type { SecretBox } from './secret-box';

/**
 * A builder's SSH private key at rest (remote_builders.ssh_private_key): sealed with the server key
 * (secret-box.ts), so that a dump of the database alone does not reveal it. A value written before
 * keys were sealed is still a plain PEM (`-----BEGIN …`); it is read as it is until the startup step
 * (seal-stored-secrets.ts) seals it.
 */
const SEALED = /^v\d+:/;

export function isSealed(stored: string): boolean {
  return SEALED.test(stored);
}

/** The fields to store: the private key (when one is given) sealed; null and absence kept as they are. */
export function sealBuilderKey<T extends { ssh_private_key?: string | null }>(fields: T, box: SecretBox): T {
  if (typeof fields.ssh_private_key !== 'string') return fields;
  return { ...fields, ssh_private_key: box.seal(fields.ssh_private_key) };
}

/** The private key in plaintext, for the SSH connection only. */
export function openBuilderKey(stored: string | null, box: SecretBox): string | null {
  if (stored === null || stored === '') return stored;
  return isSealed(stored) ? box.open(stored) : stored;
}
