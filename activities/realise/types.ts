import type { RealisePhase } from '../../lib/statuses';

export interface RealiseOptions {
  /** `--timeout`: wall-clock seconds for the whole realisation; 0 means no limit (as in Nix). */
  timeoutSeconds: number;
  /** `--max-silent-time`: seconds without log output; 0 means no limit (as in Nix). */
  maxSilentSeconds: number;
  /** Bytes of log passed to `onLog` before the build is killed as `log_limit_exceeded`; 0 means no limit. */
  logLimitBytes: number;
  /** Receives the build log (Nix's stderr) in order, decoded as UTF-8, never more than `logLimitBytes` in total. */
  onLog: (chunk: string) => void;
  /** What the step is doing now, as it changes. */
  onPhase?: (phase: RealisePhase) => void;
  /** Longest a closure copy to or from a builder may take before the connection is reset and the step fails as builder_failure (default 1800). */
  transferTimeoutSeconds?: number;
  /** Aborting kills the build (locally: its process group; remotely: the remote process group) → `cancelled`. */
  signal?: AbortSignal;
  /** Extra `--option name value` pairs passed to the realising nix-store (e.g. `sandbox-paths`). */
  nixOptions?: Record<string, string>;
}

/**
 * - `failed`: the derivation's builder exited non-zero (or a dependency of it failed).
 * - `timeout`: Nix's `--timeout` or `--max-silent-time` fired (exit 101), or our own watchdog did.
 * - `builder_failure`: the builder machine itself failed (connection refused or dropped, host key mismatch,
 *   its nix-store failed for a reason other than the build, builder killed mid-step): retry elsewhere.
 */
export type RealiseStatus = 'succeeded' | 'failed' | 'timeout' | 'log_limit_exceeded' | 'cancelled' | 'builder_failure';

export interface RealiseResult {
  status: RealiseStatus;
  /** Exit code of the realising `nix-store` (100 = build failed, 101 = timed out, …); null when it never exited by itself. */
  exitCode: number | null;
  errorMessage: string | null;
  /** Output name → store path, when succeeded (then every path is valid in the local /nix/store). */
  outputs: Record<string, string>;
  /** Bytes of log passed to onLog. */
  logBytes: number;
}

export interface BuilderSpec {
  id: string;
  name: string;
  /** ssh://user@host:port (user defaults to root, port to 22); `user@host` is accepted too. */
  sshUri: string;
  sshKeyFile?: string | null;
  sshPrivateKey?: string | null;
  /** Pinned host key: "ssh-ed25519 AAAA…" as in known_hosts, the bare base64 blob, or base64 of the known_hosts form (Nix machines-file style). */
  publicHostKey?: string | null;
  /** Passed to the builder's nix-store as `--store`, e.g. "/tmp/b1/root" or "local?root=/x". */
  remoteStore?: string | null;
}
