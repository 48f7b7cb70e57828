import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

export interface BuildProduct {
  type: string;
  subtype: string;
  /** Base name of the product ("" for the output itself or a name outside Hydra's allowed characters). */
  name: string;
  path: string;
  /** Hex SHA-256 of a regular file. */
  sha256: string | null;
  /** Size in bytes of a regular file. */
  size: number | null;
  isDirectory: boolean;
  contentType: string | null;
  /** The optional fourth field ("entry point", e.g. index.html of a directory of docs). */
  defaultPath: string | null;
}

export interface BuildMetric {
  name: string;
  value: number;
  unit: string | null;
}

/** Hydra's product line: `type subtype path [defaultPath]`, the path possibly "quoted". */
const PRODUCT_LINE = /^([a-zA-Z0-9_-]+)\s+([a-zA-Z0-9_-]+)\s+("[^"]+"|[^\s<>"]+)(?:\s+([^\s<>]+))?$/;
const PRODUCT_NAME = /^[a-zA-Z0-9.@:_+ -]*$/;
const METRIC_NAME = /^[a-zA-Z0-9._-]+$/;
const METRIC_UNIT = /^[a-zA-Z0-9._%-]+$/;
/** Like C's strtod: the leading number of the text (Hydra uses std::stod). */
const LEADING_NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html', '.htm': 'text/html', '.txt': 'text/plain', '.log': 'text/plain', '.md': 'text/markdown',
  '.css': 'text/css', '.js': 'text/javascript', '.json': 'application/json', '.xml': 'application/xml',
  '.pdf': 'application/pdf', '.ps': 'application/postscript', '.png': 'image/png', '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.svg': 'image/svg+xml', '.zip': 'application/zip',
  '.gz': 'application/gzip', '.tgz': 'application/gzip', '.xz': 'application/x-xz', '.bz2': 'application/x-bzip2',
  '.zst': 'application/zstd', '.tar': 'application/x-tar', '.iso': 'application/x-iso9660-image',
  '.deb': 'application/vnd.debian.binary-package', '.rpm': 'application/x-rpm', '.nar': 'application/x-nix-nar',
};

export function contentTypeOf(filePath: string): string | null {
  return CONTENT_TYPES[path.posix.extname(filePath).toLowerCase()] ?? null;
}

async function sha256OfFile(filePath: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(filePath)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function within(child: string, root: string): boolean {
  return child === root || child.startsWith(root.endsWith('/') ? root : `${root}/`);
}

/** Whether `p` is a folder (`stat` follows a symlink, `lstat` does not); false when it cannot be read. */
function isFolder(p: string, stat: typeof fs.statSync | typeof fs.lstatSync): boolean {
  try {
    return stat(p, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch {
    return false;
  }
}

/**
 * The text of `<output>/nix-support/<name>`, or null when it is not a regular file. Most outputs have no
 * `nix-support` folder (many are a single file): that is found with two stat calls that answer undefined
 * instead of throwing, because a failed asynchronous lstat builds an error with its stack for every build.
 */
async function readNixSupportFile(outputPath: string, name: string): Promise<string | null> {
  // Followed, as the components of a path are: only the file itself must not be a symlink.
  const folder = path.posix.join(outputPath, 'nix-support');
  if (!isFolder(outputPath, fs.statSync) || !isFolder(folder, fs.statSync)) return null;
  try {
    const file = path.posix.join(folder, name);
    if (!fs.lstatSync(file, { throwIfNoEntry: false })?.isFile()) return null;
    return await fsp.readFile(file, 'utf8');
  } catch {
    return null;
  }
}

/**
 * Parses `<output>/nix-support/hydra-build-products` as Hydra's queue runner does. Lines that do not
 * parse, and paths that do not exist or lie outside the output (or `allowedRoots`, e.g. the build's
 * other outputs) are skipped. Symlinks are not followed (like Hydra, they are products without hash or size).
 * Returns [] when the file does not exist.
 */
export async function readBuildProducts(outputPath: string, opts: { allowedRoots?: string[] } = {}): Promise<BuildProduct[]> {
  return (await declaredProducts(outputPath, opts.allowedRoots ?? [])) ?? [];
}

/** The products `hydra-build-products` declares (see readBuildProducts), or null when the output has no such file. */
async function declaredProducts(outputPath: string, allowedRoots: string[]): Promise<BuildProduct[] | null> {
  const text = await readNixSupportFile(outputPath, 'hydra-build-products');
  if (text === null) return null;
  const roots = [outputPath, ...allowedRoots].map((r) => path.posix.normalize(r).replace(/\/+$/, ''));
  const realRoots = await Promise.all(roots.map((r) => fsp.realpath(r).catch(() => r)));
  const products: BuildProduct[] = [];
  for (const rawLine of text.split('\n')) {
    const match = PRODUCT_LINE.exec(rawLine.replace(/\s+$/, ''));
    if (!match) continue;
    const [, type, subtype, quotedPath, defaultPath] = match;
    const declared = quotedPath.startsWith('"') && quotedPath.endsWith('"') ? quotedPath.slice(1, -1) : quotedPath;
    if (!declared.startsWith('/')) continue;
    const productPath = path.posix.normalize(declared).replace(/(.)\/+$/, '$1');
    if (!roots.some((root) => within(productPath, root))) continue;
    // A symlinked directory inside the output must not lead the path out of it.
    if (!roots.includes(productPath)) {
      const realParent = await fsp.realpath(path.posix.dirname(productPath)).catch(() => null);
      if (realParent === null || !realRoots.some((root) => within(realParent, root))) continue;
    }
    let stat: fs.Stats;
    try {
      stat = await fsp.lstat(productPath);
    } catch {
      continue;
    }
    const baseName = roots.includes(productPath) ? '' : path.posix.basename(productPath);
    const product: BuildProduct = {
      type,
      subtype,
      name: PRODUCT_NAME.test(baseName) ? baseName : '',
      path: productPath,
      sha256: null,
      size: null,
      isDirectory: stat.isDirectory(),
      contentType: stat.isFile() ? contentTypeOf(productPath) : null,
      defaultPath: defaultPath ?? null,
    };
    if (stat.isFile()) {
      product.size = stat.size;
      product.sha256 = await sha256OfFile(productPath);
    }
    products.push(product);
  }
  return products;
}

/**
 * The products of a build with these outputs, as Hydra records them: the declared products of every
 * output; when no output declares any, each output that is a directory becomes a `nix-build` product
 * (subtype "" for `out`, else the output name).
 */
export async function readBuildProductsOfOutputs(outputs: Record<string, string>): Promise<BuildProduct[]> {
  const all = Object.values(outputs);
  const products: BuildProduct[] = [];
  let declared = false;
  for (const outputPath of all) {
    const declaredHere = await declaredProducts(outputPath, all);
    if (declaredHere === null) continue;
    declared = true;
    products.push(...declaredHere);
  }
  if (declared) return products;
  for (const [outputName, outputPath] of Object.entries(outputs)) {
    if (!isFolder(outputPath, fs.lstatSync)) continue;
    products.push({
      type: 'nix-build',
      subtype: outputName === 'out' ? '' : outputName,
      name: path.posix.basename(outputPath).replace(/^[0-9a-z]{32}-/, ''),
      path: outputPath,
      sha256: null,
      size: null,
      isDirectory: true,
      contentType: null,
      defaultPath: null,
    });
  }
  return products;
}

/** Parses `<output>/nix-support/hydra-metrics` (`name value [unit]` per line) as Hydra does; a later line wins over an earlier one of the same name. */
export async function readBuildMetrics(outputPath: string): Promise<BuildMetric[]> {
  const text = await readNixSupportFile(outputPath, 'hydra-metrics');
  if (text === null) return [];
  const metrics = new Map<string, BuildMetric>();
  for (const line of text.split('\n')) {
    const fields = line.split(/\s+/).filter((f) => f !== '');
    if (fields.length < 2 || !METRIC_NAME.test(fields[0])) continue;
    const number = LEADING_NUMBER.exec(fields[1]);
    if (!number) continue;
    const value = Number(number[0]);
    if (!Number.isFinite(value)) continue;
    const unit = fields.length >= 3 && METRIC_UNIT.test(fields[2]) ? fields[2] : null;
    metrics.set(fields[0], { name: fields[0], value, unit });
  }
  return [...metrics.values()];
}
