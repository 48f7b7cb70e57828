import fs from 'node:fs';
import os from 'node:os';
import { procStat } from './processes';

/**
 * Who a process is, precisely enough that another process on the same machine can tell later whether it
 * is still alive (issue 6: a worker that finds the batch of a worker that died fails it at once instead
 * of leaving Temporal to wait for its heartbeat timeout).
 *
 * - `pid` alone is not enough: PIDs are reused, so the process's start time (in clock ticks since boot,
 *   field 22 of `/proc/<pid>/stat`) goes with it, and the boot it belongs to (`boot_id`).
 * - PIDs mean something only within one PID namespace: two containers each have a PID 1. The namespace
 *   (`/proc/self/ns/pid`, e.g. `pid:[4026531836]`) and the host name must both match before a PID is
 *   looked up; otherwise nothing is concluded.
 */
export interface ProcessIdentity {
  host: string;
  bootId: string;
  pidNamespace: string;
  pid: number;
  /** The process's start time, in clock ticks after boot. */
  startTicks: string;
}

/** This process's identity, or undefined where /proc does not tell it (then nothing is ever concluded about it). */
export function thisProcessIdentity(): ProcessIdentity | undefined {
  const bootId = readTrimmed('/proc/sys/kernel/random/boot_id');
  const pidNamespace = readLink('/proc/self/ns/pid');
  const startTicks = startTicksOf(process.pid);
  if (bootId === undefined || pidNamespace === undefined || startTicks === undefined) return undefined;
  return { host: os.hostname(), bootId, pidNamespace, pid: process.pid, startTicks };
}

/**
 * Whether the process `owner` names has certainly ended, judged from this process: only when both are
 * on the same host in the same PID namespace. Then it has ended if the machine has booted since, or no
 * process has its PID, or the process with its PID started at another time (the PID was reused).
 * Anywhere else (another host, another container, /proc unreadable) the answer is false: not known.
 */
export function hasCertainlyEnded(owner: ProcessIdentity, self: ProcessIdentity | null = thisProcessIdentity() ?? null): boolean {
  if (!self || owner.host !== self.host || owner.pidNamespace !== self.pidNamespace) return false;
  if (owner.bootId !== self.bootId) return true;
  if (owner.pid === self.pid) return owner.startTicks !== self.startTicks;
  const now = statOf(owner.pid);
  // A zombie (killed, not yet reaped by its parent) runs no code any more.
  return now === undefined || now.startTicks !== owner.startTicks || now.state === 'Z' || now.state === 'X';
}

/** The start time of process `pid` (ticks after boot), or undefined when there is no such process. */
export function startTicksOf(pid: number): string | undefined {
  return statOf(pid)?.startTicks;
}

/** The state letter and start time of process `pid`, from `/proc/<pid>/stat`. */
function statOf(pid: number): { state: string; startTicks: string } | undefined {
  const field = procStat(pid);
  const startTicks = field?.(22);
  return field && startTicks && /^\d+$/.test(startTicks) ? { state: field(3), startTicks } : undefined;
}

function readTrimmed(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function readLink(file: string): string | undefined {
  try {
    return fs.readlinkSync(file);
  } catch {
    return undefined;
  }
}
