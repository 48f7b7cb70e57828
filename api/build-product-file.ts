import fsp from 'node:fs/promises';
import path from 'node:path';
import { ApiError, forbidden, invalidField, notFound } from './errors';
import type { BuildProductRow } from './queries/builds';

async function realpathOrUndefined(p: string): Promise<string | undefined> {
  try {
    return await fsp.realpath(p);
  } catch {
    return undefined;
  }
}

function isWithin(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);
}

/**
 * The real path of a product's file, once it is proven to lie inside one of the build's outputs
 * (symlinks resolved on both sides). Refuses anything else: a product row can name any path, and
 * this route must never serve files outside what the build produced.
 */
export async function resolveProductFile(product: BuildProductRow, outputPaths: string[]): Promise<{ file: string; size: number }> {
  if (product.is_directory) {
    throw invalidField('params.product_id', 'the product is a directory; download its files one by one');
  }
  if (!path.isAbsolute(product.path)) throw forbidden(`product ${product.id} has a relative path; only files inside the build's outputs are served`);
  const real = await realpathOrUndefined(product.path);
  if (!real) throw notFound(`the file of product ${product.id} (it is not on this server)`);
  const roots = (await Promise.all(outputPaths.filter((p) => path.isAbsolute(p)).map(realpathOrUndefined))).filter((p): p is string => !!p);
  if (!roots.some((root) => isWithin(real, root))) {
    throw forbidden(`product ${product.id} is not inside an output of its build`);
  }
  const stat = await fsp.stat(real);
  if (stat.isDirectory()) throw invalidField('params.product_id', 'the product is a directory; download its files one by one');
  if (!stat.isFile()) throw new ApiError('NOT_FOUND', `product ${product.id} is not a regular file`);
  return { file: real, size: stat.size };
}

/** A Content-Disposition value that cannot break out of its quotes. */
export function attachmentDisposition(name: string): string {
  const base = path.basename(name) || 'download';
  const ascii = base.replace(/[^A-Za-z0-9._+-]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(base)}`;
}
