import { PassThrough } from 'node:stream';
import { keepLastWords, SERVE_OPTIONS, StoreServe, type ServeTransport } from '../nix/store-serve';
import { remoteNixStore } from './closure';
import type { BuilderConnection } from './ssh-connection';

/**
 * A builder's store through one `nix-store --serve` on one SSH channel (issue 6): a batch asks which
 * outputs are built, and their closures, every time a derivation ends; a `nix-store` process on the
 * builder per question cost more CPU than the builds themselves. The channel holds one of the
 * connection's channel slots until `close()`.
 */
export class RemoteStoreServe extends StoreServe {
  constructor(conn: BuilderConnection, remoteStore: string | null | undefined) {
    super(() => remoteServeTransport(conn, remoteStore));
  }
}

function remoteServeTransport(conn: BuilderConnection, remoteStore: string | null | undefined): ServeTransport {
  const input = new PassThrough();
  const output = new PassThrough();
  const stderr: string[] = [];
  const stopped = new AbortController();
  const closed = conn
    .exec([...remoteNixStore(remoteStore), '--serve', ...SERVE_OPTIONS], {
      stdin: input,
      onStdout: (chunk) => output.write(chunk),
      onStderr: (chunk) => keepLastWords(stderr, chunk),
      signal: stopped.signal,
    })
    .then(
      () => undefined,
      (err: Error) => {
        stderr.push(err.message);
      },
    )
    .finally(() => output.end());
  return {
    input,
    output,
    stderr,
    closed,
    stop() {
      // EOF ends the remote nix-store --serve; closing the channel makes sure.
      input.end();
      setTimeout(() => stopped.abort(), 1_000).unref();
    },
  };
}
