import type { BuilderSpec } from './types';

/** The columns of a remote_builders row that say how to reach the builder. */
export interface BuilderConnectionColumns {
  id: string;
  name: string;
  ssh_uri: string;
  ssh_key_file: string | null;
  ssh_private_key: string | null;
  public_host_key: string | null;
  remote_store: string | null;
}

/** How to reach a builder, from its row. */
export function builderSpecOf(row: BuilderConnectionColumns): BuilderSpec {
  return {
    id: row.id,
    name: row.name,
    sshUri: row.ssh_uri,
    sshKeyFile: row.ssh_key_file,
    sshPrivateKey: row.ssh_private_key,
    publicHostKey: row.public_host_key,
    remoteStore: row.remote_store,
  };
}
