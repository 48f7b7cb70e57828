/** Nix's base-32 alphabet (no e, o, t, u). */
const ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';

/** Encodes bytes the way Nix prints hashes (`nix hash to-base32`): least significant 5-bit groups last. */
export function toNixBase32(bytes: Uint8Array): string {
  const length = Math.ceil((bytes.length * 8) / 5);
  let out = '';
  for (let n = length - 1; n >= 0; n--) {
    const bit = n * 5;
    const i = Math.floor(bit / 8);
    const j = bit % 8;
    const low = bytes[i] >> j;
    const high = i + 1 < bytes.length ? bytes[i + 1] << (8 - j) : 0;
    out += ALPHABET[(low | high) & 0x1f];
  }
  return out;
}

/** A 52-character Nix base-32 SHA-256 digest, or 32 characters for a store path's hash part. */
export function isNixBase32(text: string, length: number): boolean {
  if (text.length !== length) return false;
  for (const ch of text) if (!ALPHABET.includes(ch)) return false;
  return true;
}

/** A SHA-256 digest as narinfo writes it: `sha256:<nix-base32>`. */
export function nixSha256Hash(digest: Uint8Array): string {
  return `sha256:${toNixBase32(digest)}`;
}

/** `sha256-<base64>` (SRI, as `nix path-info --json` prints it) → `sha256:<nix-base32>` (as narinfo wants it). */
export function sriToNixHash(sri: string): string {
  const m = /^sha256-([A-Za-z0-9+/]+={0,2})$/.exec(sri);
  if (m) return nixSha256Hash(Buffer.from(m[1], 'base64'));
  if (/^sha256:[0-9a-df-np-sv-z]{52}$/.test(sri)) return sri;
  throw new Error(`not a SHA-256 hash: ${sri}`);
}
