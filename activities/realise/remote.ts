import { copyClosureFrom, copyClosureTo, locallyInvalidPaths, remoteNixStore } from './closure';
import { readDerivation, type DerivationInfo } from '../nix/drv';
import { RealiseSupervision, realiseArgs } from './supervision';
import { runRemoteProcessGroup, type RemoteProcessGroup } from './remote-process';
import { statusFromNixExit } from './realise-status';
import { BuilderConnectionError, type BuilderConnection, type BuilderConnectionPool } from './ssh-connection';
import type { BuilderSpec, RealiseOptions, RealiseResult, RealiseStatus } from './types';
import type { RealisePhase } from '../../lib/statuses';

/**
 * What must be on the builder before it builds `drvPaths`: their .drv closure plus the outputs of their
 * input derivations that are valid here (each .drv read once, one validity check for all).
 */
export async function buildInputsOf(drvPaths: string[]): Promise<string[]> {
  const drvs = await Promise.all(drvPaths.map((d) => readDerivation(d)));
  const inputs = [...new Set(drvs.flatMap((drv) => Object.keys(drv.inputDrvOutputs)))];
  const inputDrvs = new Map(await Promise.all(inputs.map(async (d) => [d, await readDerivation(d)] as const)));
  const inputOutputs = new Set<string>();
  for (const drv of drvs) {
    for (const [inputDrvPath, outputNames] of Object.entries(drv.inputDrvOutputs)) {
      for (const name of outputNames) {
        const path = inputDrvs.get(inputDrvPath)!.outputs[name];
        if (path) inputOutputs.add(path);
      }
    }
  }
  const invalid = await locallyInvalidPaths([...inputOutputs]);
  return [...drvPaths, ...[...inputOutputs].filter((p) => !invalid.has(p))];
}

/**
 * Runs a transfer (or a connection) to a builder with a time limit: a stalled one (a pipe that never
 * drains, a channel that never closes) must not hang its step or batch. After the limit the pooled
 * connection is reset, which fails its channels, and the work fails with a BuilderConnectionError.
 */
export async function withTransferLimit<T>(pool: BuilderConnectionPool, builderId: string, limitSeconds: number, work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      pool.drop(builderId);
      reject(new BuilderConnectionError(`${what} took longer than ${limitSeconds} s; the connection was reset`));
    }, limitSeconds * 1000);
  });
  try {
    return await Promise.race([work, stalled]);
  } finally {
    clearTimeout(timer);
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

  const guarded = <T>(work: Promise<T>, what: string): Promise<T> => withTransferLimit(pool, spec.id, opts.transferTimeoutSeconds ?? 1800, work, what);

  let phase: RealisePhase = 'connecting';
  let conn: BuilderConnection;
  try {
    opts.onPhase?.('connecting');
    conn = await guarded(pool.get(spec), 'connecting');
    if (opts.signal?.aborted) return cancelled();

    phase = 'sending_inputs';
    opts.onPhase?.('sending_inputs');
    await guarded(buildInputsOf([drvPath]).then((inputs) => copyClosureTo(conn, inputs, spec.remoteStore)), 'sending inputs');
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
  let group: RemoteProcessGroup | undefined;
  const supervision = new RealiseSupervision(opts, () => group?.stop());
  const log = supervision.log;
  group = runRemoteProcessGroup(conn, [...remoteNixStore(spec.remoteStore), ...realiseArgs(drvPath, opts)], (b) => log.write(b));
  // Stopped already (a cancel that came first): the group is killed the moment its id arrives.
  if (supervision.stoppedAs) group.stop();
  const exit = await group.exit;
  supervision.close();
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
