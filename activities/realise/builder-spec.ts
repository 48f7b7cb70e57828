import type { BuilderSpec } from './types';
import type { SecretBox } from '../../lib/secret-box';
import type { RemoteBuilderRow } from '../records/builders';
import { openBuilderKey } from '../../lib/sealed-builder-key';

/** The columns of a remote_builders row that say how to reach the builder. */
export type BuilderConnectionColumns = Pick<RemoteBuilderRow, 'id' | 'name' | 'ssh_uri' | 'ssh_key_file' | 'ssh_private_key' | 'public_host_key' | 'remote_store'>;

/** How to reach a builder, from its row; the private key is opened with the server key (`box`). */
export function builderSpecOf(row: BuilderConnectionColumns, box: SecretBox): BuilderSpec {
  return {
    id: row.id,
    name: row.name,
    sshUri: row.ssh_uri,
    sshKeyFile: row.ssh_key_file,
    sshPrivateKey: openBuilderKey(row.ssh_private_key, box),
    publicHostKey: row.public_host_key,
    remoteStore: row.remote_store,
  };
}
