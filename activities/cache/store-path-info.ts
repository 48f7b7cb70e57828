import { runNix } from '../nix/nix-env';
import { chunkPaths } from '../realise/nix-process';
import { sriToNixHash } from '../../lib/binary-cache/nix-base32';

export interface StorePathInfo {
  path: string;
  narHash: string;
  narSize: number;
  references: string[];
  deriver: string | null;
  ca: string | null;
}

interface PathInfoJson {
  path: string;
  valid?: boolean;
  narHash?: string;
  narSize?: number;
  references?: string[];
  deriver?: string;
  ca?: string;
}

/** The local store's metadata of `paths` (`nix path-info --json`), NAR hashes in narinfo's `sha256:<base32>` form. */
export async function storePathInfos(paths: string[]): Promise<Map<string, StorePathInfo>> {
  const infos = new Map<string, StorePathInfo>();
  for (const chunk of chunkPaths(paths)) {
    const result = await runNix('nix', ['--extra-experimental-features', 'nix-command', 'path-info', '--json', ...chunk]);
    if (result.code !== 0) throw new Error(`nix path-info exited with ${result.code}: ${result.stderr.trim().slice(-500)}`);
    for (const entry of JSON.parse(result.stdout) as PathInfoJson[]) {
      if (entry.valid === false || !entry.narHash || entry.narSize === undefined) throw new Error(`${entry.path} is not valid in the local store`);
      infos.set(entry.path, {
        path: entry.path,
        narHash: sriToNixHash(entry.narHash),
        narSize: entry.narSize,
        references: entry.references ?? [],
        deriver: entry.deriver ?? null,
        ca: entry.ca ?? null,
      });
    }
  }
  return infos;
}
