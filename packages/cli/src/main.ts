#!/usr/bin/env node
// vat: train, evaluate and compare VAT models from the terminal.
// Exit codes: 0 ok, 1 runtime failure (non-finite loss, backend failure), 2 bad flags or files,
// 130 interrupted (a checkpoint was written; resume with --resume).
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import {
  BACKENDS,
  BackendFailureError,
  ENGINES,
  InvalidConfigError,
  type ImageSet,
  InvalidInputError,
  NonFiniteLossError,
  PRESETS,
  type RunOptions,
  SEED_TABLE,
  Trainer,
  VatError,
  WeightsFormatError,
  all,
  gather,
  modelConfig,
  parseBackend,
} from '@vat/core';
import { loadMnist, readImageSet, writeFileAtomic } from '@vat/core/node';

import { Progress, confusionTable } from './progress.js';
import { FILES, emit, runTraining } from './run.js';

const int = (name: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!/^\s*-?\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
  return n;
};
const num =
  (name: string, positive = true) =>
  (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || (positive ? n <= 0 : n < 0)) {
      throw new InvalidArgumentError(`${name} must be a ${positive ? 'positive' : 'non-negative'} number`);
    }
    return n;
  };

/** Flag name -> RunOptions key, for the flags shared by `train` and `compare`. */
const OPTION_KEYS: Record<string, keyof RunOptions> = {
  epochs: 'epochs',
  batchSize: 'batchSize',
  unlabeledBatchSize: 'unlabeledBatchSize',
  labeled: 'labeled',
  trainSize: 'trainSize',
  valSize: 'valSize',
  dropout: 'dropout',
  vat: 'vat',
  entmin: 'entmin',
  eps: 'eps',
  xi: 'xi',
  powerIterations: 'powerIterations',
  alpha: 'alpha',
  optimizer: 'optimizer',
  lr: 'lr',
  lrDecay: 'lrDecay',
  backend: 'backend',
  engine: 'engine',
  threads: 'threads',
  seed: 'seed',
  evalBatchSize: 'evalBatchSize',
  checkpointSeconds: 'checkpointSeconds',
};

function addTrainingOptions(cmd: Command, preset: string): Command {
  return cmd
    .addOption(new Option('--preset <name>', 'named settings; flags override them').choices(Object.keys(PRESETS)).default(preset))
    .option('--epochs <n>', 'passes over the training set', int('--epochs', 1))
    .option('--batch-size <n>', 'labeled examples per step', int('--batch-size', 1))
    .option('--unlabeled-batch-size <n>', 'unlabeled examples per step (semi-supervised)', int('--unlabeled-batch-size', 1))
    .option('--labeled <n>', 'semi-supervised: keep N labels, balanced per class', int('--labeled', 1))
    .option('--train-size <n>', 'use only N training examples', int('--train-size', 1))
    .option('--val-size <n>', 'hold out N training examples for validation (0: validate on the test set)', int('--val-size', 0))
    .option('--dropout', "the seed's dropout (.25 and .5)")
    .option('--no-dropout', 'no dropout')
    .option('--no-vat', 'plain training, without the VAT term')
    .option('--entmin', 'add the entropy term (VAT+EntMin)')
    .option('--eps <x>', 'norm of r_adv per sample', num('--eps'))
    .option('--xi <x>', 'norm of the power-iteration probe', num('--xi'))
    .option('--power-iterations <n>', 'power iterations', int('--power-iterations', 0))
    .option('--alpha <x>', 'weight of the VAT term', num('--alpha', false))
    .addOption(new Option('--optimizer <name>', 'optimiser').choices(['adadelta', 'adam']))
    .option('--lr <x>', 'learning rate', num('--lr'))
    .option('--lr-decay <x>', 'multiply the learning rate by this after each epoch', num('--lr-decay'))
    .addOption(new Option('--backend <name>', 'auto: hardware WebGPU if present, else CPU; burn-cpu: burn-flex, the baseline').choices(BACKENDS))
    .addOption(new Option('--engine <name>', 'auto: the native addon for the CPU backend when built, else wasm').choices(ENGINES))
    .option('--threads <n>', 'threads of the CPU backend (default: every core)', int('--threads', 1))
    .option('--seed <n>', 'seed for init, data order, dropout and d', int('--seed', 0))
    .option('--eval-batch-size <n>', 'batch size for evaluation', int('--eval-batch-size', 1))
    .option('--checkpoint-seconds <n>', 'write a checkpoint at least this often', num('--checkpoint-seconds'))
    .option('--data <dir>', 'directory with the four MNIST idx files (default: the bundled MNIST)')
    .option('--train-images <file>', 'idx images file for training (with --train-labels)')
    .option('--train-labels <file>', 'idx labels file for training')
    .option('--test-images <file>', 'idx images file for testing (with --test-labels)')
    .option('--test-labels <file>', 'idx labels file for testing')
    .option('--json', 'print JSON lines on stdout (progress stays on stderr)');
}

/** The preset's options with every flag the user typed on top. */
function collectOptions(cmd: Command): RunOptions {
  const flags = cmd.opts();
  const preset = PRESETS[flags.preset as string]!;
  const out: RunOptions = { ...preset.options };
  for (const [flag, key] of Object.entries(OPTION_KEYS)) {
    if (cmd.getOptionValueSource(flag) === 'cli') (out as Record<string, unknown>)[key] = flags[flag];
  }
  if (out.backend) parseBackend(out.backend);
  // A preset's learning rate belongs to its optimiser: switching optimiser without --lr takes
  // the new optimiser's default rather than, say, Adadelta's 1.0 for Adam.
  if (cmd.getOptionValueSource('optimizer') === 'cli' && cmd.getOptionValueSource('lr') !== 'cli') delete out.lr;
  return out;
}

async function loadData(flags: Record<string, string | undefined>) {
  const own = ['trainImages', 'trainLabels', 'testImages', 'testLabels'].filter((k) => flags[k] !== undefined);
  if (own.length > 0 && own.length < 4) {
    throw new InvalidConfigError('give all four of --train-images, --train-labels, --test-images and --test-labels, or none');
  }
  if (own.length === 4) {
    if (flags.data) throw new InvalidConfigError('--data and the idx file flags exclude each other');
    const [train, test] = await Promise.all([
      readImageSet(flags.trainImages!, flags.trainLabels!, 'training set'),
      readImageSet(flags.testImages!, flags.testLabels!, 'test set'),
    ]);
    if (train.rows !== test.rows || train.cols !== test.cols) {
      throw new InvalidInputError(`training images are ${train.rows}x${train.cols} but test images are ${test.rows}x${test.cols}`);
    }
    return { train, test };
  }
  return loadMnist(flags.data);
}

function defaultOut(preset: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  return path.join('runs', `${preset}-${stamp}`);
}

function interruptSignal(progress: Progress): AbortSignal {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    progress.message('interrupt: finishing the current step and writing a checkpoint (press Ctrl-C again to quit now)');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  return controller.signal;
}

async function trainCommand(cmd: Command): Promise<number> {
  const flags = cmd.opts();
  const progress = new Progress();
  let options: RunOptions;
  let out: string;
  const resume = flags.resume as string | undefined;
  if (resume) {
    const allowed = new Set(['resume', 'json', 'backend', 'engine', 'threads', 'preset', 'data', 'trainImages', 'trainLabels', 'testImages', 'testLabels']);
    const extra = Object.keys(flags).filter((k) => cmd.getOptionValueSource(k) === 'cli' && !allowed.has(k));
    if (extra.length) {
      throw new InvalidConfigError(
        `--resume continues a run with its own settings; drop ${extra.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}`,
      );
    }
    let run: { options: RunOptions };
    try {
      run = JSON.parse(await fs.readFile(path.join(resume, FILES.run), 'utf8'));
    } catch (e) {
      throw new InvalidConfigError(`cannot resume from '${resume}': ${(e as Error).message}; --resume takes the --out directory of an earlier run`);
    }
    options = run.options;
    for (const k of ['backend', 'engine', 'threads'] as const) {
      if (cmd.getOptionValueSource(k) === 'cli') options[k] = flags[k];
    }
    out = resume;
  } else {
    options = collectOptions(cmd);
    out = (flags.out as string | undefined) ?? defaultOut(flags.preset);
    try {
      const existing = await fs.readdir(out);
      if (existing.includes(FILES.checkpoint)) {
        throw new InvalidConfigError(`'${out}' already holds a run; resume it with --resume ${out}, or pick another --out`);
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  const data = await loadData(flags);
  const io = { out, resume: !!resume, json: !!flags.json, progress, signal: interruptSignal(progress), command: process.argv.slice(2) };
  progress.message(`output: ${out}`);
  const result = await runTraining(options, data, io);
  result.trainer.dispose();
  if (result.interrupted) {
    progress.message(`interrupted at step ${result.step}; checkpoint saved. Resume with: pnpm --filter cli train --resume ${out}`);
    emit(io, { event: 'interrupted', step: result.step, out });
    return 130;
  }
  return 0;
}

async function evalCommand(weightsFile: string, cmd: Command): Promise<number> {
  const flags = cmd.opts();
  const progress = new Progress();
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await fs.readFile(weightsFile));
  } catch (e) {
    throw new InvalidInputError(`cannot read weights '${weightsFile}': ${(e as Error).message}`);
  }
  const model = modelConfig(bytes, `'${weightsFile}'`);
  let test: ImageSet;
  if (flags.testImages || flags.testLabels) {
    if (!(flags.testImages && flags.testLabels)) throw new InvalidConfigError('give both --test-images and --test-labels');
    test = await readImageSet(flags.testImages, flags.testLabels, 'test set');
  } else {
    test = (await loadMnist(flags.data)).test;
  }
  const trainer = await Trainer.create({ ...model, backend: flags.backend ?? 'auto', engine: flags.engine, threads: flags.threads });
  progress.message(`backend: ${trainer.adapter.description}`);
  await trainer.importWeights(bytes);
  const d = gather(test, all(test).indices);
  const started = performance.now();
  const r = await trainer.evaluate(d.x, d.y, flags.evalBatchSize ?? 250);
  const seconds = (performance.now() - started) / 1000;
  trainer.dispose();
  if (flags.json) {
    emit(
      { json: true },
      { event: 'eval', weights: weightsFile, loss: r.loss, accuracy: r.accuracy, count: r.count, confusion: Array.from(r.confusion), seconds },
    );
  } else {
    process.stdout.write(`test: loss ${r.loss.toFixed(4)}  accuracy ${(100 * r.accuracy).toFixed(2)}%  (${r.count} images, ${seconds.toFixed(1)} s)\n`);
    process.stdout.write(`${confusionTable(r.confusion, Number(model.classes ?? 10))}\n`);
  }
  return 0;
}

async function compareCommand(cmd: Command): Promise<number> {
  const flags = cmd.opts();
  const progress = new Progress();
  const base = collectOptions(cmd);
  const out = (flags.out as string | undefined) ?? defaultOut('compare');
  const data = await loadData(flags);
  const signal = interruptSignal(progress);
  const rows: Record<string, unknown>[] = [];
  for (const seedRow of SEED_TABLE) {
    const name = `${seedRow.dropout ? 'dropout' : 'no-dropout'}_${seedRow.vat ? 'vat' : 'no-vat'}`;
    progress.message(`\n== ${name} ==`);
    const r = await runTraining({ ...base, dropout: seedRow.dropout, vat: seedRow.vat }, data, {
      out: path.join(out, name),
      resume: false,
      json: !!flags.json,
      progress,
      signal,
      command: process.argv.slice(2),
    });
    r.trainer.dispose();
    if (r.interrupted) return 130;
    const secondsPerEpoch = r.history.reduce((a, e) => a + e.trainSeconds, 0) / r.history.length;
    rows.push({
      dropout: seedRow.dropout,
      vat: seedRow.vat,
      testLoss: r.test!.loss,
      accuracy: r.test!.accuracy,
      secondsPerEpoch,
      seedAccuracy: seedRow.accuracy,
      seedSecondsPerEpoch: seedRow.secondsPerEpoch,
      backend: r.trainer.adapter.description,
    });
  }
  const yn = (b: unknown) => (b ? 'yes' : 'no');
  const table = [
    `| dropout | VAT | test loss | accuracy | s/epoch | seed accuracy | seed s/epoch (GTX 1080) |`,
    `|---|---|---|---|---|---|---|`,
    ...rows.map(
      (r) =>
        `| ${yn(r.dropout)} | ${yn(r.vat)} | ${(r.testLoss as number).toFixed(4)} | ${(100 * (r.accuracy as number)).toFixed(2)}% | ${(r.secondsPerEpoch as number).toFixed(1)} | ${(100 * (r.seedAccuracy as number)).toFixed(2)}% | ${r.seedSecondsPerEpoch} |`,
    ),
  ].join('\n');
  const note = `Ours: ${rows[0]?.backend}, ${base.epochs} epoch(s)${base.trainSize ? `, ${base.trainSize} training examples` : ''}. Seed: Keras, 12 epochs, full MNIST.`;
  await writeFileAtomic(path.join(out, 'compare.json'), JSON.stringify({ options: base, rows }, null, 2));
  await writeFileAtomic(path.join(out, 'compare.md'), `${table}\n\n${note}\n`);
  if (flags.json) emit({ json: true }, { event: 'compare', rows });
  else process.stdout.write(`\n${table}\n\n${note}\n`);
  return 0;
}

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
    .option('--resume <dir>', 'continue the interrupted run in <dir> from its checkpoint');
  trainCmd.action(async () => {
    process.exitCode = await trainCommand(trainCmd);
  });
  const evalCmd = program
    .command('eval <weights>')
    .description('score a safetensors weights file on the test set')
    .option('--data <dir>', 'directory with the MNIST idx files (default: bundled)')
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

function exitCodeFor(err: unknown): number {
  if (err instanceof InvalidConfigError || err instanceof InvalidInputError || err instanceof WeightsFormatError) return 2;
  return 1;
}

async function main(argv: string[]): Promise<number> {
  // `pnpm --filter cli train` runs in packages/cli; relative paths (--out, --data, --resume)
  // should mean what they meant where the user typed the command.
  if (process.env.INIT_CWD && process.env.npm_lifecycle_event) process.chdir(process.env.INIT_CWD);
  try {
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
    if (err instanceof NonFiniteLossError) {
      process.stderr.write('The last good checkpoint is in the output directory; resume from it with a lower --lr or --eps.\n');
    } else if (err instanceof BackendFailureError) {
      process.stderr.write('The device failed. Resume from the last checkpoint with --resume, or use --backend cpu.\n');
    } else if (!(err instanceof VatError)) {
      process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
    }
    return exitCodeFor(err);
  }
}

// Dawn (the Node WebGPU) keeps the event loop alive, so leave explicitly.
main(process.argv.slice(2)).then((code) => process.exit(code));
