import { spawn } from 'node:child_process';
import { nixEnv } from './nix/nix-env';

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('nix-store', args, { stdio: ['ignore', 'pipe', 'pipe'], env: nixEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    // 'close', not 'exit': only then has all of stdout been read.
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The paths among `paths` that are not valid in the server's store. */
export async function invalidPaths(paths: string[]): Promise<string[]> {
  if (paths.length === 0) return [];
  const out: string[] = [];
  for (let i = 0; i < paths.length; i += 500) {
    const r = await run(['--check-validity', '--print-invalid', ...paths.slice(i, i + 500)]);
    if (r.code !== 0) throw new Error(`nix-store --check-validity failed: ${r.stderr.trim()}`);
    out.push(...r.stdout.split('\n').filter(Boolean));
  }
  return out;
}

/** Every path in the closure of `path` (for a .drv: its input derivations and sources). */
export async function closureOf(path: string): Promise<string[]> {
  const r = await run(['--query', '--requisites', path]);
  if (r.code !== 0) throw new Error(`nix-store --query --requisites ${path} failed: ${r.stderr.trim()}`);
  return r.stdout.split('\n').filter(Boolean);
}

/** Total NAR size of the closure of the given paths, in bytes. */
export async function closureSize(paths: string[]): Promise<number | null> {
  if (paths.length === 0) return null;
  const req = await run(['--query', '--requisites', ...paths]);
  if (req.code !== 0) return null;
  const all = req.stdout.split('\n').filter(Boolean);
  let total = 0;
  for (let i = 0; i < all.length; i += 500) {
    const r = await run(['--query', '--size', ...all.slice(i, i + 500)]);
    if (r.code !== 0) return null;
    for (const line of r.stdout.split('\n').filter(Boolean)) total += Number(line);
  }
  return total;
}
