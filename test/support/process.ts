// Runs a program to its end and keeps what it printed: the CLI, web and bench suites all test
// their packages as a user runs them, from the outside.
import { spawn } from 'node:child_process';

export interface Finished {
  /** The exit status; null when a signal ended the process. */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  /** Sees stderr as it arrives; `interrupt()` sends SIGINT, as Ctrl-C would. */
  onStderr?: (chunk: string, interrupt: () => void) => void;
}

export function runProcess(cmd: string, args: string[], opts: RunOptions = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      opts.onStderr?.(String(d), () => child.kill('SIGINT'));
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Node itself (the one running the tests) on a script and its arguments. */
export const runNode = (args: string[], opts: RunOptions = {}): Promise<Finished> => runProcess(process.execPath, args, opts);
