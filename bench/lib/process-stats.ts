import { readFileSync } from 'node:fs';

/** CPU time and disk writes of another process, read from /proc (Linux). */
export interface ProcessStats {
  readonly cpuMs: number;
  /** Bytes this process caused to be sent to the storage layer. */
  readonly writeBytes: number;
  /** Resident set size now, and its peak over the process's life (VmRSS, VmHWM). */
  readonly rssBytes: number;
  readonly peakRssBytes: number;
}

const CLOCK_TICKS_PER_SECOND = 100;

export function readProcessStats(pid: number): ProcessStats | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    const writeBytes = Number(/write_bytes: (\d+)/.exec(io)?.[1] ?? NaN);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) =>
      Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
    return {
      cpuMs: ((utime + stime) * 1000) / CLOCK_TICKS_PER_SECOND,
      writeBytes,
      rssBytes: kib('VmRSS') * 1024,
      peakRssBytes: kib('VmHWM') * 1024,
    };
  } catch {
    return undefined;
  }
}
