// CPU time and load for bench figures on a shared machine: wall time alone moves with whatever else
// runs, so workloads print the CPU their processes spent beside it (bench/README.md).
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

const TICK_MS = 10; // USER_HZ is 100 on Linux (man 5 proc, /proc/[pid]/stat utime and stime)

/**
 * CPU time (user + system, 10 ms resolution) of a process on this machine, e.g. a PostgreSQL
 * backend; undefined when /proc has no such process (PostgreSQL on another host, or the process ended).
 */
export function procCpuMs(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the parenthesized command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_MS;
}

/** This process's CPU time (user + system) in ms. */
export function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** The 1, 5 and 15 minute load averages, e.g. "1.71 2.44 3.69". */
export function loadAverage(): string {
  return loadavg().map((x) => x.toFixed(2)).join(' ');
}
