import { pack } from 'tar-stream';
import { spawn } from 'node:child_process';

/** A file of a deterministic tarball: its path below the top directory and its content. */
export interface TarFile {
  path: string;
  content: string | Buffer;
  executable?: boolean;
}

/** Every entry's time: one second after the epoch, as in the Nix store. */
const FIXED_MTIME = new Date(1000);

/**
 * A tar archive whose bytes depend only on its files: one top directory, entries sorted by path,
 * the same mtime, owner 0:0 with no user or group names, and fixed modes.
 */
export async function deterministicTar(topDirectory: string, files: TarFile[]): Promise<Buffer> {
  const archive = pack();
  const chunks: Buffer[] = [];
  const finished = new Promise<void>((resolve, reject) => {
    archive.on('data', (chunk) => chunks.push(chunk as Buffer));
    archive.once('end', () => resolve());
    archive.once('error', reject);
  });
  const common = { mtime: FIXED_MTIME, uid: 0, gid: 0, uname: '', gname: '' };
  const directories = new Set<string>([topDirectory]);
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const file of sorted) {
    const parts = file.path.split('/');
    for (let i = 1; i < parts.length; i++) directories.add(`${topDirectory}/${parts.slice(0, i).join('/')}`);
  }
  for (const dir of [...directories].sort()) archive.entry({ ...common, name: `${dir}/`, type: 'directory', mode: 0o755 });
  for (const file of sorted) {
    const content = typeof file.content === 'string' ? Buffer.from(file.content, 'utf8') : file.content;
    archive.entry({ ...common, name: `${topDirectory}/${file.path}`, type: 'file', mode: file.executable ? 0o755 : 0o644, size: content.length }, content);
  }
  archive.finalize();
  await finished;
  return Buffer.concat(chunks);
}

/**
 * xz, as the xz command line writes it at preset 6 with a CRC64 check, on one thread: the same input
 * gives the same bytes. (@napi-rs/lzma 1.4 was tried first: its encoder stores LZMA2 chunks
 * uncompressed, so its "xz" is larger than its input.)
 */
export async function xzCompress(data: string | Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('xz', ['--compress', '--stdout', '--format=xz', '--check=crc64', '-6', '--threads=1'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new Error(`xz failed (${code}): ${Buffer.concat(err).toString('utf8').trim()}`));
    });
    child.stdin.on('error', () => {}); // a failing xz reports through its exit status
    child.stdin.end(data);
  });
}
