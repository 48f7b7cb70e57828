import { runNix } from './nix/nix-env';

let cached: Promise<string> | undefined;

/** The worker's own Nix system (e.g. x86_64-linux), asked of Nix once. */
export function localSystem(): Promise<string> {
  cached ??= runNix('nix-instantiate', ['--eval', '--json', '--expr', 'builtins.currentSystem']).then(
    ({ code, stdout, stderr }) => {
      if (code !== 0) throw new Error(`nix-instantiate failed: ${stderr.trim()}`);
      return JSON.parse(stdout) as string;
    },
  );
  cached.catch(() => {
    cached = undefined;
  });
  return cached;
}
