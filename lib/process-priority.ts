import fs from 'node:fs';
import os from 'node:os';

/** Nice values Linux accepts: -20 (the most CPU) to 19 (the least). */
export const MIN_NICE = -20;
export const MAX_NICE = 19;

export interface NiceResult {
  /** Whether the process's scheduling group (its session's autogroup, else the process) now has `nice`. */
  applied: boolean;
  /** Why it could not be applied (e.g. EPERM: a negative value needs root or CAP_SYS_NICE). */
  error?: string;
}

/**
 * Gives a process that leads a session of its own (one spawned `detached`, as Ringmaster spawns Nix) the
 * nice value `nice`, for it and the processes it starts afterwards.
 *
 * Linux schedules by autogroup when `kernel.sched_autogroup_enabled` is 1 (the default): every session is
 * a group that gets a fair share of the CPU, and a process's own nice only orders it within its group. So
 * the group's nice is set (`/proc/<pid>/autogroup`) and, for kernels without autogroups, the process's own
 * (`setpriority`). Never throws: a process that has exited, or a value this process may not set, answers
 * `applied: false` with the reason.
 */
export function setSessionNice(pid: number, nice: number): NiceResult {
  if (!Number.isInteger(nice) || nice < MIN_NICE || nice > MAX_NICE) throw new RangeError(`a nice value is an integer from ${MIN_NICE} to ${MAX_NICE}, got ${nice}`);
  const errors: string[] = [];
  let grouped = false;
  try {
    fs.writeFileSync(`/proc/${pid}/autogroup`, String(nice));
    grouped = true;
  } catch (err) {
    // ENOENT: a kernel built without autogroups (then the process's own nice is what counts), or no such process.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') errors.push(`autogroup: ${code ?? (err as Error).message}`);
  }
  let own = false;
  try {
    os.setPriority(pid, nice);
    own = true;
  } catch (err) {
    // Node's SystemError: the errno's name is in `info.code` (ESRCH, EACCES), `code` is ERR_SYSTEM_ERROR.
    const e = err as NodeJS.ErrnoException & { info?: { code?: string } };
    errors.push(`setpriority: ${e.info?.code ?? e.code ?? e.message}`);
  }
  return own && (grouped || !autogroupsEnabled()) ? { applied: true } : { applied: false, error: errors.join('; ') || 'not applied' };
}

/** Whether the kernel schedules by autogroup (`kernel.sched_autogroup_enabled`). */
export function autogroupsEnabled(): boolean {
  try {
    return fs.readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() === '1';
  } catch {
    return false;
  }
}
