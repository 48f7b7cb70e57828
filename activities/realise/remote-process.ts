import { KILL_GRACE_MS } from './supervision';
import type { BuilderConnection, ExecResult } from './ssh-connection';

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

async function killRemoteGroup(conn: BuilderConnection, pgid: number, signal: 'TERM' | 'KILL'): Promise<void> {
  try {
    await conn.exec(['kill', `-${signal}`, '--', `-${pgid}`], { urgent: true });
  } catch {
    /* the connection is gone: nothing more we can do from here */
  }
}

export interface RemoteProcessGroup {
  /** TERM to the remote process group, KILL (and the channel closed) after a grace period. Idempotent. */
  stop(): void;
  /** The remote exit (or the error that lost it), once any kill has been sent. */
  exit: Promise<ExecResult | Error>;
}

/**
 * Runs `nix-store …` on the builder in a process group of its own, over one channel of the pooled
 * connection, its stderr to `onStderr`. A stop asked before the group's id has arrived is carried out
 * the moment it does.
 */
export function runRemoteProcessGroup(conn: BuilderConnection, nixStoreArgs: string[], onStderr: (chunk: Buffer) => void): RemoteProcessGroup {
  const channelAbort = new AbortController();
  let pgid: number | null = null;
  let stopAsked = false;
  let killing: Promise<void> | null = null;
  let stdoutText = '';
  let execDone: Promise<ExecResult | Error> = Promise.resolve(new Error('not started'));

  const killGroup = () => {
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

  execDone = conn
    .exec(remoteBuildCommand(nixStoreArgs), {
      signal: channelAbort.signal,
      onStderr,
      onStdout: (b) => {
        if (pgid !== null) return;
        stdoutText += b.toString('utf8');
        const m = new RegExp(`^${PGID_MARKER} (\\d+)\\n`).exec(stdoutText);
        if (m) {
          pgid = Number(m[1]);
          if (stopAsked) killGroup();
        }
      },
    })
    .catch((err: Error) => err);

  return {
    stop() {
      stopAsked = true;
      killGroup();
    },
    exit: (async () => {
      const exit = await execDone;
      if (killing) await killing;
      return exit;
    })(),
  };
}
