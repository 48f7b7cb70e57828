// A process's resident memory, read from /proc: now (VmRSS) and its peak so far (VmHWM, the kernel's
// high-water mark), in bytes.
import fs from 'node:fs';

function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

export const residentBytes = (pid: number): number => statusField(pid, 'VmRSS');
export const peakResidentBytes = (pid: number): number => statusField(pid, 'VmHWM');
export const megabytes = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;
