import { copyClosureFrom, copyClosureTo, locallyInvalidPaths, remoteNixStore } from './closure';
import { readDerivation, type DerivationInfo } from '../nix/drv';
import { KILL_GRACE_MS, RealiseSupervision, realiseArgs } from './supervision';
import { statusFromNixExit } from './realise-status';
import { type BuilderConnection, type BuilderConnectionPool } from './ssh-connection';
import type { BuilderSpec, RealiseOptions, RealiseResult, RealiseStatus } from './types';
import type { RealisePhase } from '../../lib/statuses';

const PGID_MARKER = 'ringmaster-pgid';

/**
 * The remote command line of a build, as an argument array: `setsid -w` puts the build in a process group
 * of its own (forking only when the login shell already leads one) and waits for it, passing its exit
 * status; the inner shell prints that group's id before it execs nix-store, so a cancel can kill the
 * whole group over a second channel.
 */
export function remoteBuildCommand(nixStoreArgs: string[]): string[] {
  return ['setsid', '-w', 'sh', '-c', `echo ${PGID_MARKER} $$; exec "$@"`, 'sh', ...nixStoreArgs];
}

/** What must be on the builder before it builds: the .drv closure plus the outputs of its input derivations that exist here. */
export async function buildInputsOf(drvPath: string, drv: DerivationInfo): Promise<string[]> {
  const inputOutputs: string[] = [];
  for (const [inputDrvPath, outputNames] of Object.entries(drv.inputDrvOutputs)) {
    const inputDrv = await readDerivation(inputDrvPath);
    for (const name of outputNames) {
      const path = inputDrv.outputs[name];
      if (path) inputOutputs.push(path);
    }
  }
  const invalid = await locallyInvalidPaths(inputOutputs);
  return [drvPath, ...inputOutputs.filter((p) => !invalid.has(p))];
}

async function killRemoteGroup(conn: BuilderConnection, pgid: number, signal: 'TERM' | 'KILL'): Promise<void> {
  try {
    await conn.exec(['kill', `-${signal}`, '--', `-${pgid}`], { urgent: true });
  } catch {
    /* the connection is gone: nothing more we can do from here */
  }
}

function result(status: RealiseStatus, errorMessage: string | null, logBytes: number, exitCode: number | null = null, outputs: Record<string, string> = {}): RealiseResult {
  return { status, exitCode, errorMessage, outputs, logBytes };
}

/**
 * Builds a derivation on an SSH builder: sends what the builder lacks, runs `nix-store --realise` there
 * (log streamed, limits enforced, cancellation killing the remote process group), and fetches the outputs'
 * closure back into the local store. Never throws: a broken builder is `builder_failure`.
 */
export async function realiseOnBuilder(pool: BuilderConnectionPool, spec: BuilderSpec, drvPath: string, opts: RealiseOptions): Promise<RealiseResult> {
  const cancelled = () => result('cancelled', 'build cancelled', 0);
  if (opts.signal?.aborted) return cancelled();

  let drv: DerivationInfo;
  try {
    drv = await readDerivation(drvPath);
  } catch (err) {
    return result('failed', `cannot read derivation ${drvPath}: ${(err as Error).message}`, 0);
  }

  // A stalled transfer (a pipe that never drains, a channel that never closes) must not hang the step:
  // after the limit the pooled connection is reset, which fails its channels, and the step is retried.
  const transferLimitMs = (opts.transferTimeoutSeconds ?? 1800) * 1000;
  const guarded = async <T>(work: Promise<T>, what: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        pool.drop(spec.id);
        reject(new Error(`${what} took longer than ${transferLimitMs / 1000} s; the connection was reset`));
      }, transferLimitMs);
    });
    try {
      return await Promise.race([work, stalled]);
    } finally {
      clearTimeout(timer);
    }
  };

  let phase: RealisePhase = 'connecting';
  let conn: BuilderConnection;
  try {
    opts.onPhase?.('connecting');
    conn = await guarded(pool.get(spec), 'connecting');
    if (opts.signal?.aborted) return cancelled();

    phase = 'sending_inputs';
    opts.onPhase?.('sending_inputs');
    await guarded(buildInputsOf(drvPath, drv).then((inputs) => copyClosureTo(conn, inputs, spec.remoteStore)), 'sending inputs');
    if (opts.signal?.aborted) return cancelled();
  } catch (err) {
    if (opts.signal?.aborted) return cancelled();
    return result('builder_failure', `${phase === 'connecting' ? '' : `while ${phase.replace('_', ' ')}: `}${(err as Error).message}`, 0);
  }

  opts.onPhase?.('building');
  const built = await buildRemotely(conn, spec, drvPath, opts);
  if (built.status !== 'succeeded') return built;

  try {
    opts.onPhase?.('receiving_outputs');
    const outputs = Object.values(drv.outputs).filter((p) => p !== '');
    await guarded(copyClosureFrom(conn, outputs, spec.remoteStore), 'receiving outputs');
    const stillMissing = await locallyInvalidPaths(outputs);
    if (stillMissing.size > 0) return result('builder_failure', `outputs did not arrive: ${[...stillMissing].join(' ')}`, built.logBytes, built.exitCode);
    return result('succeeded', null, built.logBytes, built.exitCode, { ...drv.outputs });
  } catch (err) {
    if (opts.signal?.aborted) return result('cancelled', 'build cancelled', built.logBytes, built.exitCode);
    return result('builder_failure', `while receiving outputs: ${(err as Error).message}`, built.logBytes, built.exitCode);
  }
}

async function buildRemotely(conn: BuilderConnection, spec: BuilderSpec, drvPath: string, opts: RealiseOptions): Promise<RealiseResult> {
  const command = remoteBuildCommand([...remoteNixStore(spec.remoteStore), ...realiseArgs(drvPath, opts)]);
  const channelAbort = new AbortController();
  let pgid: number | null = null;
  let killing: Promise<void> | null = null;
  let stdoutText = '';
  let execDone: Promise<{ code: number | null; signal?: string } | Error> = Promise.resolve(new Error('not started'));

  const killRemote = () => {
    if (killing || pgid === null) return;
    const group = pgid;
    killing = (async () => {
      await killRemoteGroup(conn, group, 'TERM');
      const gone = await Promise.race([execDone.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), KILL_GRACE_MS))]);
      if (!gone) {
        await killRemoteGroup(conn, group, 'KILL');
        channelAbort.abort();
      }
    })();
  };
  // The group id may not have arrived yet when a stop fires: it is killed the moment it does (below).
  const supervision = new RealiseSupervision(opts, () => {
    if (pgid !== null) killRemote();
  });
  const log = supervision.log;

  execDone = conn
    .exec(command, {
      signal: channelAbort.signal,
      onStderr: (b) => log.write(b),
      onStdout: (b) => {
        stdoutText += b.toString('utf8');
        if (pgid === null) {
          const m = new RegExp(`^${PGID_MARKER} (\\d+)\\n`).exec(stdoutText);
          if (m) {
            pgid = Number(m[1]);
            if (supervision.stoppedAs) killRemote();
          }
        }
      },
    })
    .catch((err: Error) => err);
  const exit = await execDone;
  supervision.close();
  if (killing) await killing;
  log.end();

  if (supervision.stoppedAs) {
    return result(supervision.stoppedAs, supervision.stoppedMessage(), log.bytes, exit instanceof Error ? null : exit.code);
  }
  if (exit instanceof Error) return result('builder_failure', `while building: ${exit.message}`, log.bytes);
  if (exit.code === null) {
    return result('builder_failure', `the build's remote process ended without an exit status${exit.signal ? ` (signal ${exit.signal})` : ''}`, log.bytes);
  }
  const { status, errorMessage } = statusFromNixExit(exit.code, log.tail, 'builder_failure');
  return result(status, errorMessage, log.bytes, exit.code);
}
