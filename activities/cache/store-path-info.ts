import { localStore, type ServedPathInfo } from '../nix/store-serve';

export type StorePathInfo = ServedPathInfo;

/** The local store's metadata of `paths` (NAR hashes in narinfo's `sha256:<base32>` form); every path must be valid. */
export async function storePathInfos(paths: string[]): Promise<Map<string, StorePathInfo>> {
  const infos = await localStore.pathInfos(paths);
  const missing = paths.find((p) => !infos.has(p));
  if (missing !== undefined) throw new Error(`${missing} is not valid in the local store`);
  return infos;
}
