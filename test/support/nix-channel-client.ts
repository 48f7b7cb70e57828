import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * A real Nix 2.8 channel subscriber with state of its own: a fresh HOME (~/.nix-channels,
 * ~/.nix-defexpr), a fresh fetcher cache (XDG_CACHE_HOME), and NIX_STATE_DIR pointing at its own
 * profiles, so that `nix-channel --update` writes neither root's channels profile nor another test's.
 * The store stays the machine's (NIX_CONFIG `store = local?state=…` keeps its real database).
 *
 * Substitution from Ringmaster's binary cache can be added through `extraConfig`
 * (`substituters = <url>/nix-cache`, `trusted-public-keys = …`).
 */
export interface NixChannelClient {
  dir: string;
  env: NodeJS.ProcessEnv;
  /** Runs a Nix command (argument array, no shell) as this subscriber; rejects with its stderr on failure. */
  run(command: string, args: string[]): Promise<{ stdout: string; stderr: string }>;
  /** `nix-instantiate --eval --json -E expr`, parsed; `<channel>` lookups go through ~/.nix-defexpr/channels. */
  evalJson(expr: string): Promise<unknown>;
  stop(): Promise<void>;
}

export async function makeNixChannelClient(extraConfig: string[] = []): Promise<NixChannelClient> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-nix-channel-'));
  const home = path.join(dir, 'home');
  const stateDir = path.join(dir, 'state');
  const realStateDir = process.env.NIX_STATE_DIR || '/nix/var/nix';
  fs.mkdirSync(home);
  // nix-channel's profile is <NIX_STATE_DIR>/profiles/per-user/<user>/channels; its folder must exist.
  fs.mkdirSync(path.join(stateDir, 'profiles', 'per-user', os.userInfo().username), { recursive: true });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    USER: os.userInfo().username,
    XDG_CACHE_HOME: path.join(dir, 'cache'),
    NIX_STATE_DIR: stateDir,
    NIX_PATH: path.join(home, '.nix-defexpr', 'channels'),
    // tarball-ttl 0: every --update asks the server again (it answers 304 when nothing changed).
    // build-users-group empty: Nix's build-user pool is locked under NIX_STATE_DIR, which is this client's own,
    // so with build users it could pick a uid another Nix process of the machine is building as and, cleaning
    // up before its own build, SIGKILL that build's processes (seen as builds "failed due to signal 9").
    NIX_CONFIG: [`store = local?state=${realStateDir}`, 'substituters =', 'tarball-ttl = 0', 'build-users-group =', ...extraConfig].join('\n'),
  };
  const run = async (command: string, args: string[]) => {
    try {
      return await execFileAsync(command, args, { env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new Error(`${command} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`);
    }
  };
  return {
    dir,
    env,
    run,
    async evalJson(expr: string) {
      const { stdout } = await run('nix-instantiate', ['--eval', '--strict', '--json', '-E', expr]);
      return JSON.parse(stdout);
    },
    async stop() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
