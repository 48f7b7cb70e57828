import path from 'node:path';

/** The compressed NARs live under `<data folder>/nix-cache/nar/`, each named by the hash of its own bytes. */
export function narDirectory(dataDir: string): string {
  return path.join(dataDir, 'nix-cache', 'nar');
}

/** `<data folder>/nix-cache/nar/<file hash, nix-base32>.nar.<compression>` */
export function narFilePath(dataDir: string, fileHash: string, compression: string): string {
  return path.join(narDirectory(dataDir), `${fileHash.replace(/^sha256:/, '')}.nar.${compression}`);
}

/** The last segment of a NAR URL (`<52 base-32 chars>.nar.xz`) as a file name, or null when it is not one of ours. */
export function parseNarFileName(segment: string): { fileHash: string; compression: 'xz' } | null {
  const m = /^([0-9a-df-np-sv-z]{52})\.nar\.xz$/.exec(segment);
  return m ? { fileHash: `sha256:${m[1]}`, compression: 'xz' } : null;
}
