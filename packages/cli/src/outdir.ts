// The output directory of a run: checked before anything is trained, locked while the run writes.
import { promises as fs, rmSync } from 'node:fs';
import path from 'node:path';

import { InvalidConfigError, InvalidInputError } from '@vat/core';
import { writeFileAtomic } from '@vat/core/node';

export const FILES = {
  run: 'run.json',
  metrics: 'metrics.jsonl',
  checkpoint: 'checkpoint.safetensors',
  weights: 'weights.safetensors',
  lock: '.lock',
} as const;

/** The files whose presence means a directory already holds a run (a run.json alone is a run that never got going). */
const RUN_FILES = [FILES.checkpoint, FILES.weights, FILES.metrics];

/**
 * Makes `out` ready for a run: refuses an empty path, a file, a directory that cannot be written,
 * and (for a fresh run) one that already holds a run's files, each with a message that names it.
 */
export async function prepareOut(out: string, fresh: boolean, holds: readonly string[] = RUN_FILES): Promise<void> {
  if (out.trim() === '') throw new InvalidConfigError('--out was given an empty path (an unset shell variable?); give a directory');
  const stat = await fs.stat(out).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)));
  if (stat && !stat.isDirectory()) throw new InvalidConfigError(`--out '${out}' is a file, not a directory; give a directory`);
  try {
    await makeDir(out);
    // A write the way every file of the run is written, so a read-only place fails now, not after an epoch.
    const probe = path.join(out, '.write-probe');
    await writeFileAtomic(probe, '');
    await fs.rm(probe);
  } catch (e) {
    throw new InvalidInputError(`cannot write to the output directory '${out}': ${(e as Error).message}`);
  }
  if (fresh) {
    const present = (await fs.readdir(out)).filter((f) => holds.includes(f));
    if (present.length) {
      throw new InvalidConfigError(
        `'${out}' already holds a run (${present.join(', ')}); ${present.includes(FILES.checkpoint) ? `resume it with --resume ${out}, or ` : ''}pick another --out`,
      );
    }
  }
}

/**
 * `mkdir -p`, step by step: Node's recursive mkdir spins forever on some paths it cannot create
 * (under /proc, say) instead of failing.
 */
async function makeDir(dir: string): Promise<void> {
  const made = (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  };
  try {
    await fs.mkdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    const parent = path.dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw e;
    await makeDir(parent);
    await fs.mkdir(dir).catch(made);
  }
}

/** Whether a process with this PID runs (on this machine). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `out/.lock` (holding this PID) so that two runs never write one directory; a lock left by
 * a process that is gone is taken over. Returns the release, which is also run on exit.
 */
export async function lockOut(out: string): Promise<() => void> {
  const file = path.join(out, FILES.lock);
  for (let attempt = 0; ; attempt++) {
    try {
      await fs.writeFile(file, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
      const pid = Number.parseInt(await fs.readFile(file, 'utf8').catch(() => ''), 10);
      if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new InvalidConfigError(`'${out}' is in use by another run (PID ${pid}); wait for it to end, or pick another --out`);
      }
      await fs.rm(file, { force: true }); // stale: its process is gone
    }
  }
  const release = () => {
    process.off('exit', release);
    rmSync(file, { force: true });
  };
  process.on('exit', release);
  return release;
}
