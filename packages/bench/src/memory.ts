// Peak resident memory from /proc (Linux): VmHWM, the high-water mark of a process's RSS. On a
// machine without a GPU every adapter here is software, so host memory is the whole footprint;
// on a real GPU the device memory is not in these figures.
import { readFileSync, readdirSync } from 'node:fs';

function status(pid: number | 'self'): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined; // exited, or not Linux
  }
}

/** VmHWM of one process in bytes, or undefined where /proc is unavailable. */
export function peakRss(pid: number | 'self' = 'self'): number | undefined {
  const m = status(pid)?.match(/^VmHWM:\s+(\d+) kB/m);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** `root` and every process below it. */
export function processTree(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const ppid = status(Number(name))?.match(/^PPid:\s+(\d+)/m);
    if (ppid) parent.set(Number(name), Number(ppid[1]));
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, pp] of parent) if (pp === out[i]) out.push(pid);
  return out;
}

/** Sum of VmHWM over a process tree (a browser's processes), in bytes. */
export function peakRssTree(root: number): number | undefined {
  const peaks = processTree(root)
    .map((p) => peakRss(p))
    .filter((v): v is number => v !== undefined);
  return peaks.length ? peaks.reduce((s, v) => s + v, 0) : undefined;
}
