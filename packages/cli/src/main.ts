#!/usr/bin/env node
// vat: train, evaluate and compare VAT models from the terminal. This file is the program (its
// commands and flags) and the one place errors become messages and exit codes; the commands are
// in commands.ts, the flags in flags.ts, the data in data.ts, the output directory in outdir.ts,
// one run's files in run.ts.
// Exit codes: 0 ok, 1 runtime failure (non-finite or diverging loss, backend failure, full disk),
// 2 bad flags, files or directories, 130 interrupted (a checkpoint was written; resume with --resume).
import { Command, CommanderError, Option } from 'commander';
import { BACKENDS, BackendFailureError, ENGINES, InvalidConfigError, InvalidInputError, VatError, WeightsFormatError } from '@vat/core';

import { compareCommand, evalCommand, trainCommand } from './commands.js';
import { addTrainingOptions, int } from './flags.js';
import { emit } from './run.js';

export function buildProgram(): Command {
  const program = new Command('vat')
    .description('Virtual Adversarial Training (Miyato et al.) on a burn/WebAssembly core')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  const trainCmd = addTrainingOptions(
    program.command('train', { isDefault: true }).description('train a model (default: the quick preset on the bundled MNIST)'),
    'default',
  )
    .option('--out <dir>', 'output directory (default: runs/<preset>-<time>)')
    .option('--resume <dir>', 'continue the interrupted run in <dir> from its checkpoint, with its own settings')
    .option(
      '--override',
      "with --resume: let the flags given change the checkpoint's eps, xi, alpha, power iterations, vat, entmin, entmin weight, lr, lr decay or epochs",
    );
  trainCmd.action(async () => {
    process.exitCode = await trainCommand(trainCmd);
  });
  const evalCmd = program
    .command('eval <weights>')
    .description('score a safetensors weights file on the test set')
    .option(
      '--data <path>',
      'the test set of this data, as train takes --data (default: the bundled MNIST); data without a test set gives the examples train held out',
    )
    .option('--test-data <path>', 'as train takes it')
    .option('--test-size <n>', 'as train takes it')
    .option('--image-shape <CxHxW>', 'as train takes it')
    .option('--test-images <file>', 'idx images file')
    .option('--test-labels <file>', 'idx labels file')
    .addOption(new Option('--backend <name>', 'auto, cpu, burn-cpu or webgpu').choices(BACKENDS))
    .addOption(new Option('--engine <name>', 'auto, wasm or native').choices(ENGINES))
    .option('--threads <n>', 'threads of the CPU backend (default: every core)', int('--threads', 1))
    .option('--eval-batch-size <n>', 'batch size', int('--eval-batch-size', 1))
    .option('--json', 'print a JSON line');
  evalCmd.action(async (weights: string) => {
    process.exitCode = await evalCommand(weights, evalCmd);
  });
  const compareCmd = addTrainingOptions(
    program.command('compare').description("run the seed's four configurations (dropout x VAT) and print its table beside ours"),
    'seed',
  ).option('--out <dir>', 'output directory (default: runs/compare-<time>)');
  compareCmd.action(async () => {
    process.exitCode = await compareCommand(compareCmd);
  });
  return program;
}

/** A Node file-system error (it has a code such as ENOSPC and the path it failed on). */
const fsError = (err: unknown): err is NodeJS.ErrnoException =>
  err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && typeof (err as NodeJS.ErrnoException).syscall === 'string';

/** Failures of the machine mid-run, rather than of what the user asked for. */
const RUNTIME_FS = ['ENOSPC', 'EIO', 'EDQUOT', 'EMFILE', 'ENFILE', 'ENOMEM'];

function exitCodeFor(err: unknown): number {
  if (err instanceof InvalidConfigError || err instanceof InvalidInputError || err instanceof WeightsFormatError) return 2;
  if (fsError(err)) return RUNTIME_FS.includes(err.code!) ? 1 : 2;
  return 1;
}

const COMMANDS = ['train', 'eval', 'compare', 'help'];

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = Math.min(up + 1, row[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length]!;
}

/** A first word that is no command (train is the default, so commander would read it as an argument). */
function checkCommand(argv: string[]): void {
  const word = argv[0];
  if (word === undefined || word.startsWith('-') || COMMANDS.includes(word)) return;
  const near = COMMANDS.filter((c) => distance(word, c) <= 2).sort((a, b) => distance(word, a) - distance(word, b));
  throw new InvalidConfigError(`unknown command '${word}'${near.length ? `; did you mean '${near[0]}'?` : ''} (commands: ${COMMANDS.slice(0, 3).join(', ')})`);
}

async function main(argv: string[]): Promise<number> {
  // `pnpm --filter cli train` runs in packages/cli; relative paths (--out, --data, --resume)
  // should mean what they meant where the user typed the command.
  if (process.env.INIT_CWD && process.env.npm_lifecycle_event) process.chdir(process.env.INIT_CWD);
  try {
    checkCommand(argv);
    await buildProgram().parseAsync(argv, { from: 'user' });
    return Number(process.exitCode ?? 0);
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit 0; every parse error is a usage error
      return err.exitCode === 0 ? 0 : 2;
    }
    const name = err instanceof Error ? err.name : 'Error';
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`\nerror (${name}): ${message}\n`);
    // With --json, the failure is an event too, so a consumer of stdout sees why it ended.
    if (argv.includes('--json')) emit({ json: true }, { event: 'error', name, message, exitCode: exitCodeFor(err) });
    if (err instanceof BackendFailureError) {
      process.stderr.write('The device failed. Resume from the last checkpoint with --resume, or use --backend cpu.\n');
    } else if (fsError(err)) {
      if (err.code === 'ENOSPC') process.stderr.write('The disk is full; free space, then resume with --resume (the last checkpoint is intact).\n');
    } else if (!(err instanceof VatError)) {
      process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
    }
    return exitCodeFor(err);
  }
}

// Dawn (the Node WebGPU) keeps the event loop alive, so leave explicitly.
main(process.argv.slice(2)).then((code) => process.exit(code));
