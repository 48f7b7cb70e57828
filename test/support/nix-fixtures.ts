import type { RealiseOptions } from '../../activities/realise/types';
import type { RealisePhase } from '../../lib/statuses';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** A fresh random nonce: put it in a derivation so its store paths are new on every run. */
export function nonce(): string {
  return crypto.randomBytes(8).toString('hex');
}

/** A Nix string literal. */
export function nixString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$\{/g, '\\${')}"`;
}

/**
 * Instantiates a Nix expression (no nixpkgs) and returns attribute name → .drv path.
 * `attrs` is the body of an attribute set; inside it `mk name script` makes a `/bin/sh -c script`
 * derivation carrying `env.nonce`, and `nonce` is the nonce string.
 */
export async function instantiateFixtures(attrs: string, fixtureNonce = nonce()): Promise<Record<string, string>> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringmaster-fixture-'));
  try {
    const file = path.join(dir, 'default.nix');
    await fsp.writeFile(
      file,
      `let
  nonce = ${nixString(fixtureNonce)};
  mk = name: script: derivation { inherit name nonce; builder = "/bin/sh"; args = [ "-c" script ]; system = builtins.currentSystem; };
  mkMulti = name: outputs: script: derivation { inherit name nonce outputs; builder = "/bin/sh"; args = [ "-c" script ]; system = builtins.currentSystem; };
in rec {
${attrs}
}
`,
    );
    const names = (await execFileAsync('nix-instantiate', ['--eval', '--json', '-E', `builtins.attrNames (import ${file})`])).stdout;
    const result: Record<string, string> = {};
    for (const name of JSON.parse(names) as string[]) {
      const { stdout } = await execFileAsync('nix-instantiate', ['--option', 'substituters', '', file, '-A', name]);
      result[name] = stdout.trim();
    }
    return result;
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** Realise options that record the log and the phases, for assertions. */
export function recordingRealiseOptions(overrides: Partial<RealiseOptions> = {}): RealiseOptions & { log: () => string; phases: RealisePhase[] } {
  let text = '';
  const phases: RealisePhase[] = [];
  return {
    timeoutSeconds: 60,
    maxSilentSeconds: 30,
    logLimitBytes: 0,
    onLog: (chunk) => (text += chunk),
    onPhase: (phase) => phases.push(phase),
    ...overrides,
    log: () => text,
    phases,
  };
}

/** Polls a synchronous condition every 50 ms until it holds, or fails after timeoutMs. */
export async function waitUntil(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
