import fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { procStat } from '../../lib/processes';
import { signalProcessGroup } from '../../lib/process-runner';

/** Milliseconds after SIGTERM before a `nix-store` that has not ended is killed, with its builders. */
export const KILL_GRACE_MS = 5_000;
/** How often a stop looks whether the `nix-store` has ended, or has started a build since it was told to stop. */
export const STOP_POLL_MS = 100;

/**
 * How a `nix-store --realise` is stopped, here and on an SSH builder (issue 6). SIGTERM, then SIGKILL if
 * it is still there after KILL_GRACE_MS, or at once when it has started a build since the SIGTERM.
 *
 * Why the second case: Nix 2.8 can lose a SIGTERM. Its signal thread sets a flag that the main thread's
 * next `checkInterrupt()` throws as `Interrupted`, once per process. When that throw happens inside a
 * finished build's clean-up (`deletePath` of its temporary directory, in a destructor that catches and
 * prints "error (ignored): error: interrupted by the user"), it is swallowed, and no later signal throws
 * again: Nix builds the rest of its derivations. Measured on this machine: 3 of 40 `nix-store --realise`
 * of 30 derivations (2 slots, sleeps of 0.5 s) under CPU load went on after the SIGTERM; none did
 * without load. A CI run met it as a killed worker's batch that went on building on its SSH builder for
 * the whole 5 s grace. A Nix that was interrupted for real starts no build: one new child means it was not.
 *
 * And why the builders are killed too: Nix starts each builder in a session of its own (in a PID
 * namespace of its own when sandboxed), so a SIGKILL to the `nix-store`'s group leaves its builders
 * running (a `sleep 31` built outside the sandbox's reach went on after `kill -KILL -<nix-store>`). The
 * `nix-store`'s group is stopped first (it starts no more), then each of its children is killed with its
 * group (a sandboxed builder is its PID namespace's init: the namespace goes with it), then the group.
 */

/** The processes whose parent is `pid` (from /proc: this kernel has no /proc/<pid>/task/<tid>/children). */
export function childrenOf(pid: number): number[] {
  let names: string[];
  try {
    names = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  return names.filter((name) => /^\d+$/.test(name) && Number(procStat(name)?.(4)) === pid).map(Number);
}

function kill(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Kills a `nix-store` (the leader of its process group) and the builders it started. */
export function killNixTree(pid: number): void {
  if (!kill(-pid, 'SIGSTOP')) kill(pid, 'SIGSTOP');
  for (const k of childrenOf(pid)) if (!kill(-k, 'SIGKILL')) kill(k, 'SIGKILL');
  if (!kill(-pid, 'SIGKILL')) kill(pid, 'SIGKILL');
}

/**
 * Stops a local `nix-store` spawned as the leader of its own process group, as described above. Answers
 * a function that ends the watch (call it once the process has ended).
 */
export function stopNixProcess(child: ChildProcess, { graceMs = KILL_GRACE_MS, pollMs = STOP_POLL_MS }: { graceMs?: number; pollMs?: number } = {}): () => void {
  const pid = child.pid;
  if (pid === undefined) return () => undefined;
  const ended = () => child.exitCode !== null || child.signalCode !== null;
  const before = new Set(childrenOf(pid));
  signalProcessGroup(child, 'SIGTERM');
  const started = Date.now();
  const timer = setInterval(() => {
    if (ended()) return clearInterval(timer);
    if (Date.now() - started >= graceMs || childrenOf(pid).some((k) => !before.has(k))) {
      clearInterval(timer);
      killNixTree(pid);
    }
  }, pollMs);
  return () => clearInterval(timer);
}

/**
 * The same stop as a POSIX shell function for an SSH builder, `stop_nix <pid>` (the `nix-store`, the
 * leader of its group; if it has no group yet, the PID alone): it returns once the process has ended or
 * has been killed. Its children are read from /proc, or from `ps` where there is no /proc.
 */
export const STOP_NIX_SHELL_FUNCTION = `stop_nix() {
  g=$1
  kids() {
    if [ -r /proc/self/stat ]; then
      for s in /proc/[0-9]*/stat; do
        { read -r l < "$s"; } 2>/dev/null || continue
        set -- \${l##*) }
        if [ "$2" = "$g" ]; then s=\${s#/proc/}; echo "\${s%/stat}"; fi
      done
    else
      ps -A -o pid= -o ppid= 2>/dev/null | awk -v p="$g" '$2 == p { print $1 }'
    fi
  }
  before=" $(echo $(kids)) "
  kill -TERM -$g 2>/dev/null || kill -TERM $g 2>/dev/null
  n=0
  while [ $n -lt ${KILL_GRACE_MS / STOP_POLL_MS} ] && kill -0 $g 2>/dev/null; do
    sleep ${STOP_POLL_MS / 1000}
    n=$((n + 1))
    for k in $(kids); do case "$before" in *" $k "*) ;; *) n=${KILL_GRACE_MS / STOP_POLL_MS} ;; esac; done
  done
  kill -0 $g 2>/dev/null || return 0
  kill -STOP -$g 2>/dev/null || kill -STOP $g 2>/dev/null
  for k in $(kids); do kill -KILL -$k 2>/dev/null || kill -KILL $k 2>/dev/null; done
  kill -KILL -$g 2>/dev/null || kill -KILL $g 2>/dev/null
}`;
