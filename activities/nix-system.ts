import { spawn } from 'node:child_process';

let cached: Promise<string> | undefined;

/** The worker's own Nix system (e.g. x86_64-linux), asked of Nix once. */
export function localSystem(): Promise<string> {
  cached ??= new Promise<string>((resolve, reject) => {
    const child = spawn('nix-instantiate', ['--eval', '--json', '--expr', 'builtins.currentSystem'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as string) : reject(new Error(`nix-instantiate failed: ${err.trim()}`))));
  }).catch((e) => {
    cached = undefined;
    throw e;
  });
  return cached;
}
