import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows it. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * A binary-cache signing key in Nix's format: the secret is `name:base64(seed ‖ public key)`
 * (64 bytes), the public key `name:base64(public key)` (32 bytes), as `nix-store --generate-binary-cache-key` writes them.
 */
export class NixSigningKey {
  private constructor(
    readonly name: string,
    private readonly privateKey: crypto.KeyObject,
    private readonly publicKeyBytes: Buffer,
  ) {}

  /** Parses `name:base64(64 bytes)`; the stored public half must match the seed's. */
  static fromSecretKeyText(text: string): NixSigningKey {
    const trimmed = text.trim();
    const colon = trimmed.indexOf(':');
    if (colon <= 0) throw new Error('a Nix secret key has the form name:base64');
    const name = trimmed.slice(0, colon);
    const bytes = Buffer.from(trimmed.slice(colon + 1), 'base64');
    if (bytes.length !== 64) throw new Error(`a Nix secret key holds 64 bytes, this one ${bytes.length}`);
    const privateKey = privateKeyOfSeed(bytes.subarray(0, 32));
    const publicKeyBytes = rawPublicKey(privateKey);
    if (!publicKeyBytes.equals(bytes.subarray(32))) throw new Error('the secret key\'s public half does not match its seed');
    return new NixSigningKey(name, privateKey, publicKeyBytes);
  }

  static generate(name: string): NixSigningKey {
    // From a random seed, not generateKeyPairSync: on Node 20, the garbage collector's destruction of the
    // key generation job could take the key's lock while an export of the same key held it, and the
    // process hung for good (a CI run's test file, seen with gdb: ~KeyGenJob under ExportJWKEdKey).
    const privateKey = privateKeyOfSeed(crypto.randomBytes(32));
    return new NixSigningKey(name, privateKey, rawPublicKey(privateKey));
  }

  /** `name:base64(public key)`: what clients put in `trusted-public-keys`. */
  get publicKey(): string {
    return `${this.name}:${this.publicKeyBytes.toString('base64')}`;
  }

  secretKeyText(): string {
    const der = this.privateKey.export({ format: 'der', type: 'pkcs8' });
    const seed = der.subarray(der.length - 32);
    return `${this.name}:${Buffer.concat([seed, this.publicKeyBytes]).toString('base64')}`;
  }

  /** `name:base64(ed25519 signature)`, a narinfo `Sig:` value. */
  sign(fingerprint: string): string {
    return `${this.name}:${crypto.sign(null, Buffer.from(fingerprint, 'utf8'), this.privateKey).toString('base64')}`;
  }
}

/** The Ed25519 private key of a 32-byte seed, through its PKCS#8 DER. */
function privateKeyOfSeed(seed: Buffer): crypto.KeyObject {
  return crypto.createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/** An Ed25519 public key's SPKI DER: this fixed prefix, then the 32 raw bytes. */
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** The raw public key, from its SPKI DER (the JWK export holds the key's lock while it allocates: see generate). */
function rawPublicKey(privateKey: crypto.KeyObject): Buffer {
  const der = crypto.createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  if (der.length !== SPKI_ED25519_PREFIX.length + 32 || !der.subarray(0, SPKI_ED25519_PREFIX.length).equals(SPKI_ED25519_PREFIX)) {
    throw new Error('not an Ed25519 public key');
  }
  return Buffer.from(der.subarray(SPKI_ED25519_PREFIX.length));
}

/** Where a generated key lives: `<data folder>/binary-cache/secret-key` (mode 0600) and `public-key` beside it. */
export function generatedKeyPaths(dataDir: string): { secret: string; public: string } {
  const dir = path.join(dataDir, 'binary-cache');
  return { secret: path.join(dir, 'secret-key'), public: path.join(dir, 'public-key') };
}

/** A key name for a generated key: the public URL's host (or this machine's name), then `-1`, as Nix's docs suggest. */
export function defaultKeyName(publicUrl: string | undefined): string {
  let host = os.hostname();
  if (publicUrl) {
    try {
      host = new URL(publicUrl).hostname || host;
    } catch {
      /* not a URL: keep the host name */
    }
  }
  return `${host.replace(/[^A-Za-z0-9.-]/g, '-') || 'ringmaster'}-1`;
}

/**
 * The cache's key: read from `keyFile` when configured, otherwise from the data folder, generated there
 * on first use. Two processes starting at once agree: the first to link its key file wins, the other reads it.
 */
export function loadOrCreateSigningKey(opts: { keyFile: string | undefined; dataDir: string; publicUrl: string | undefined }): NixSigningKey {
  if (opts.keyFile) return NixSigningKey.fromSecretKeyText(fs.readFileSync(opts.keyFile, 'utf8'));
  const paths = generatedKeyPaths(opts.dataDir);
  if (fs.existsSync(paths.secret)) return NixSigningKey.fromSecretKeyText(fs.readFileSync(paths.secret, 'utf8'));
  fs.mkdirSync(path.dirname(paths.secret), { recursive: true, mode: 0o700 });
  const key = NixSigningKey.generate(defaultKeyName(opts.publicUrl));
  const temp = `${paths.secret}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`;
  fs.writeFileSync(temp, `${key.secretKeyText()}\n`, { mode: 0o600, flag: 'wx' });
  try {
    fs.linkSync(temp, paths.secret);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    fs.rmSync(temp, { force: true });
  }
  const winner = NixSigningKey.fromSecretKeyText(fs.readFileSync(paths.secret, 'utf8'));
  fs.writeFileSync(paths.public, `${winner.publicKey}\n`, { mode: 0o644 });
  return winner;
}
