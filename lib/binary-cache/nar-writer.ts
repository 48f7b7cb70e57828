import fsp from 'node:fs/promises';
import { wireString } from '../nix-wire';

/**
 * Nix's archive format (NAR) written in-process: the bytes `nix-store --dump <path>` writes, for a tree of
 * regular files (with their executable bit), symbolic links and directories. No npm package writes NARs
 * on Node 20, and the format is small:
 *
 * - every token is a string framed the wire way (`lib/nix-wire.ts`): its length as 8 bytes little-endian,
 *   its bytes, zeros up to a multiple of 8;
 * - the archive is `nix-archive-1` and one node;
 * - a node is `( type regular [executable ""] contents <bytes> )`, `( type symlink target <target> )` or
 *   `( type directory (entry ( name <name> node <node> ))* )`, entries ordered by their names' bytes.
 *
 * The whole archive is held in memory: use it for small paths only (the caller knows the NAR's size from
 * `nix path-info` beforehand) and stream `nix-store --dump` for the rest.
 */
export async function narOfPath(fsPath: string): Promise<Buffer> {
  const archive = new NarTokens();
  archive.token('nix-archive-1');
  await writeNode(archive, Buffer.from(fsPath));
  return archive.bytes();
}

/** The archive's bytes so far, as a list of tokens framed the NAR way. */
class NarTokens {
  private readonly chunks: Buffer[] = [];
  private size = 0;

  token(value: string | Buffer): void {
    for (const chunk of wireString(value)) this.push(chunk);
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }

  private push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
  }
}

const SLASH = Buffer.from('/');

/** One node, file names kept as bytes throughout (a store path may hold names that are not UTF-8). */
async function writeNode(archive: NarTokens, fsPath: Buffer): Promise<void> {
  const stat = await fsp.lstat(fsPath);
  archive.token('(');
  archive.token('type');
  if (stat.isSymbolicLink()) {
    archive.token('symlink');
    archive.token('target');
    archive.token(await fsp.readlink(fsPath, { encoding: 'buffer' }));
  } else if (stat.isFile()) {
    archive.token('regular');
    if (stat.mode & 0o100) {
      archive.token('executable');
      archive.token('');
    }
    archive.token('contents');
    archive.token(await fsp.readFile(fsPath));
  } else if (stat.isDirectory()) {
    archive.token('directory');
    const names = (await fsp.readdir(fsPath, { encoding: 'buffer' })).sort(Buffer.compare);
    for (const name of names) {
      archive.token('entry');
      archive.token('(');
      archive.token('name');
      archive.token(name);
      archive.token('node');
      await writeNode(archive, Buffer.concat([fsPath, SLASH, name]));
      archive.token(')');
    }
  } else {
    throw new Error(`${fsPath.toString()}: a NAR holds only regular files, symbolic links and directories`);
  }
  archive.token(')');
}
