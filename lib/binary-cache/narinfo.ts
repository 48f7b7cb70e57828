/** One published store path: what a narinfo says about it. */
export interface CachedPathInfo {
  storePath: string;
  /** `sha256:<nix-base32>` of the uncompressed NAR. */
  narHash: string;
  narSize: number;
  /** `sha256:<nix-base32>` of the stored (compressed) file. */
  fileHash: string;
  fileSize: number;
  compression: 'xz';
  /** Full store paths. */
  references: string[];
  deriver: string | null;
  ca: string | null;
}

export const STORE_DIR = '/nix/store';

/** The 32-character hash part of `/nix/store/<hash>-<name>`. */
export function storePathHashPart(storePath: string): string {
  return storePath.slice(STORE_DIR.length + 1, STORE_DIR.length + 33);
}

export function storePathBaseName(storePath: string): string {
  return storePath.slice(STORE_DIR.length + 1);
}

/** What Nix signs: `1;<store path>;<nar hash>;<nar size>;<references as full paths, sorted, comma-separated>`. */
export function narFingerprint(info: Pick<CachedPathInfo, 'storePath' | 'narHash' | 'narSize' | 'references'>): string {
  return `1;${info.storePath};${info.narHash};${info.narSize};${[...info.references].sort().join(',')}`;
}

/** The stored file's URL relative to the cache root: named by its own hash, so it never changes. */
export function narFileUrl(info: Pick<CachedPathInfo, 'fileHash' | 'compression'>): string {
  return `nar/${info.fileHash.replace(/^sha256:/, '')}.nar.${info.compression}`;
}

/** The narinfo text (`text/x-nix-narinfo`), with one `Sig:` line per signature. */
export function renderNarInfo(info: CachedPathInfo, signatures: string[]): string {
  const lines = [
    `StorePath: ${info.storePath}`,
    `URL: ${narFileUrl(info)}`,
    `Compression: ${info.compression}`,
    `FileHash: ${info.fileHash}`,
    `FileSize: ${info.fileSize}`,
    `NarHash: ${info.narHash}`,
    `NarSize: ${info.narSize}`,
    `References: ${info.references.map(storePathBaseName).sort().join(' ')}`,
  ];
  if (info.deriver) lines.push(`Deriver: ${storePathBaseName(info.deriver)}`);
  for (const sig of signatures) lines.push(`Sig: ${sig}`);
  if (info.ca) lines.push(`CA: ${info.ca}`);
  return `${lines.join('\n')}\n`;
}

export function renderNixCacheInfo(opts: { priority: number }): string {
  return `StoreDir: ${STORE_DIR}\nWantMassQuery: 1\nPriority: ${opts.priority}\n`;
}
