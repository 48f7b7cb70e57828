import { batchRealiseArgs, nixJsonLogFeed, type BatchBuilder, type BatchRun, type BatchRunOptions } from './batch-run';
import { copyClosureFrom, copyClosureTo, remoteNixStore } from './closure';
import { RemoteStoreServe } from './remote-store-serve';
import { buildInputsOf, withTransferLimit } from './remote';
import { runRemoteProcessGroup } from './remote-process';
import { BuilderConnectionError, type BuilderConnection, type BuilderConnectionPool } from './ssh-connection';
import type { BuilderSpec } from './types';

/**
 * One `nix-store --realise d1 … dK --max-jobs <slots> --keep-going --log-format internal-json` on an
 * SSH builder, over one channel of the pooled connection, in a process group of its own (a stop kills
 * the group). Its stderr is Nix's JSON log, read as the local batch reads it. A connection lost
 * meanwhile is `spawnError`: the builder failed.
 */
export function realiseBatchRemotely(conn: BuilderConnection, spec: BuilderSpec, drvPaths: string[], opts: BatchRunOptions): BatchRun {
  const feed = nixJsonLogFeed(opts.onEvent);
  const group = runRemoteProcessGroup(conn, [...remoteNixStore(spec.remoteStore), ...batchRealiseArgs(drvPaths, opts)], (chunk) => feed.write(chunk));
  const finished = group.exit.then((exit) => {
    feed.end();
    if (exit instanceof Error) return { exitCode: null, spawnError: `on builder ${spec.name}: ${exit.message}` };
    if (exit.code === null) return { exitCode: null, spawnError: `on builder ${spec.name}: nix-store ended without an exit status${exit.signal ? ` (signal ${exit.signal})` : ''}` };
    return { exitCode: exit.code, spawnError: null };
  });
  return { stop: () => group.stop(), finished };
}

/**
 * An SSH builder as a batch's builder: `prepare` connects (the pooled connection) and copies what the
 * members need in one `nix-store --export`/`--import` stream (only the paths its store lacks: the
 * members' `.drv` closure and their inputs' outputs valid here); each ended build's outputs are fetched
 * back (their closure, what the local store lacks) before its derivation is told. Transfers are time-limited.
 */
export class RemoteBatchBuilder implements BatchBuilder {
  readonly recordedBuilderId: string;
  readonly where: string;
  private connection: BuilderConnection | undefined;
  /** The builder's store, for the questions asked each time a derivation ends (one `nix-store --serve`). */
  private store: RemoteStoreServe | undefined;

  constructor(
    private readonly pool: BuilderConnectionPool,
    private readonly spec: BuilderSpec,
    private readonly transferTimeoutSeconds: number,
  ) {
    this.recordedBuilderId = spec.id;
    this.where = `on builder ${spec.name}`;
  }

  private limited<T>(work: Promise<T>, what: string): Promise<T> {
    return withTransferLimit(this.pool, this.spec.id, this.transferTimeoutSeconds, work, what);
  }

  private get conn(): BuilderConnection {
    if (!this.connection) throw new BuilderConnectionError(`builder ${this.spec.name} was not connected`);
    return this.connection;
  }

  async prepare(drvPaths: string[]): Promise<void> {
    this.connection = await this.limited(this.pool.get(this.spec), 'connecting');
    const conn = this.connection;
    await this.limited(buildInputsOf(drvPaths).then((paths) => copyClosureTo(conn, paths, this.spec.remoteStore)), 'sending inputs');
  }

  realise(drvPaths: string[], opts: BatchRunOptions): BatchRun {
    return realiseBatchRemotely(this.conn, this.spec, drvPaths, opts);
  }

  private get served(): RemoteStoreServe {
    return (this.store ??= new RemoteStoreServe(this.conn, this.spec.remoteStore));
  }

  async invalidPaths(paths: string[]): Promise<Set<string>> {
    const valid = await this.limited(this.served.validPaths(paths), 'asking which outputs are built');
    return new Set(paths.filter((p) => !valid.has(p)));
  }

  async fetch(paths: string[]): Promise<void> {
    await this.limited(copyClosureFrom(this.conn, paths, this.spec.remoteStore, this.served), 'receiving outputs');
  }

  close(): void {
    this.store?.close();
    this.store = undefined;
  }
}
