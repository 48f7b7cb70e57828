import type { RealiseStatus } from './types';
import { lastErrorLines } from './nix-process';

/**
 * Maps how a `nix-store --realise` ended to a status. Nix 2.8 exits with 100 plus a bitmask when builds
 * failed: +1 some build timed out (`--timeout` / `--max-silent-time`), +2 a hash mismatch, +4 a `--check`
 * mismatch. Any other non-zero exit is an error of nix-store itself (bad drv path, store trouble,
 * wrong platform): `otherError` decides what that means (locally `failed`, on a builder `builder_failure`).
 */
export function statusFromNixExit(
  exitCode: number | null,
  log: string,
  otherError: RealiseStatus,
): { status: RealiseStatus; errorMessage: string | null } {
  const errorMessage = lastErrorLines(log);
  if (exitCode === 0) return { status: 'succeeded', errorMessage: null };
  if (exitCode !== null && exitCode >= 100 && exitCode <= 107) {
    const timedOut = (exitCode & 1) === 1 || /timed out after \d+ seconds/.test(errorMessage ?? '');
    return { status: timedOut ? 'timeout' : 'failed', errorMessage: errorMessage ?? `nix-store exited with ${exitCode}` };
  }
  return { status: otherError, errorMessage: errorMessage ?? `nix-store exited with ${exitCode ?? 'a signal'}` };
}
