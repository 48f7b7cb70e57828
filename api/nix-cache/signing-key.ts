import type { RingmasterConfig } from '../../lib/config';
import { loadOrCreateSigningKey, type NixSigningKey } from '../../lib/binary-cache/nix-signing-key';

const loaded = new Map<string, NixSigningKey>();

/** The binary cache's signing key for this configuration: loaded (or generated) once per process. */
export function cacheSigningKey(config: Pick<RingmasterConfig, 'cacheKeyFile' | 'dataDir' | 'publicUrl'>): NixSigningKey {
  const id = config.cacheKeyFile ?? `data:${config.dataDir}`;
  let key = loaded.get(id);
  if (!key) {
    key = loadOrCreateSigningKey({ keyFile: config.cacheKeyFile, dataDir: config.dataDir, publicUrl: config.publicUrl });
    loaded.set(id, key);
  }
  return key;
}
