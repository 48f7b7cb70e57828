import { KILL_GRACE_MS, STOP_NIX_SHELL_FUNCTION } from './stop-nix';
import type { BuilderConnection, ExecResult } from './ssh-connection';

const PGID_MARKER = 'ringmaster-pgid';

/**
 * The remote shell script around a build (its arguments are the build's command line):
 * - the build runs in a process group of its own (`setsid`; a background job is never a group leader, so
 *   setsid does not fork and `$!` is the group's id), which prints that id before it execs nix-store, so a
 *   cancel can kill the whole group over a second channel;
 * - a watcher reads the channel's stdin, which the worker holds open and never writes: it sees EOF only
 *   when the SSH session is gone (the worker died, or the connection was lost), and then stops the build
 *   with `stop_nix` (stop-nix.ts: TERM; KILL of the group and of Nix's builders after the grace period,
 *   or as soon as Nix starts a build after the TERM, which a Nix that lost the TERM does). sshd itself
 *   signals nothing to a command without a terminal when its session ends, and Nix ignores a stderr
 *   nobody reads, so without it a dead worker's batch went on building on the builder, beside the batch
 *   its retry started. An EOF that comes before the background job has called setsid finds no group
 *   yet: the job's own PID is signalled then (it has not exec'd nix-store, so it is the only process);
 * - the script ends as the build did: its exit status, or the same signal (a build killed on the builder
 *   is reported as one, not as an exit code).
 */
const REMOTE_BUILD_SCRIPT = [
  STOP_NIX_SHELL_FUNCTION,
  'exec 3<&0',
  `setsid sh -c 'echo ${PGID_MARKER} $$; exec "$@"' sh "$@" </dev/null 3<&- &`,
  'build=$!',
  '{ while read -r _; do :; done; stop_nix $build; } <&3 >/dev/null 2>&1 &',
  'watcher=$!',
  'exec 3<&-',
  'wait $build',
  'status=$?',
  'kill $watcher 2>/dev/null',
  '[ $status -gt 128 ] && kill -$((status - 128)) $$',
  'exit $status',
].join('\n');

/** The remote command line of a build, as an argument array: `REMOTE_BUILD_SCRIPT` run by `sh`, the build's command its arguments. */
export function remoteBuildCommand(nixStoreArgs: string[]): string[] {
  return ['sh', '-c', REMOTE_BUILD_SCRIPT, 'sh', ...nixStoreArgs];
}

/** `stop_nix <pgid>` on the builder over a channel of its own: it returns once the build has ended or has been killed. */
async function stopRemoteNix(conn: BuilderConnection, pgid: number): Promise<void> {
  try {
    await conn.exec(['sh', '-c', `${STOP_NIX_SHELL_FUNCTION}\nstop_nix "$1"`, 'sh', String(pgid)], { urgent: true });
  } catch {
    /* the connection is gone: nothing more we can do from here (the build's watcher stops it on EOF) */
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
      // The stop's own exec ends once the build has ended or been killed (after at most the grace period);
      // the build's channel is given up if it has not closed within another grace period.
      const stopped = stopRemoteNix(conn, group);
      const gone = await Promise.race([execDone.then(() => true), stopped.then(() => new Promise<boolean>((r) => setTimeout(() => r(false), KILL_GRACE_MS)))]);
      if (!gone) channelAbort.abort();
    })();
  };

  execDone = conn
    .exec(remoteBuildCommand(nixStoreArgs), {
      signal: channelAbort.signal,
      holdStdinOpen: true,
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
