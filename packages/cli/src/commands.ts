// The commands: train (fresh or resumed), eval and compare.
import { promises as fs } from 'node:fs';
import path from 'node:path';

import type { Command } from 'commander';
import {
  InvalidConfigError,
  InvalidInputError,
  type LoopOptions,
  SEED_TABLE,
  Trainer,
  all,
  channelStats,
  gather,
  inputShape,
  resolveOptions,
  resumedData,
  splitOptions,
  type ImageSet,
} from '@vat/core';
import { loadMnistTest, readImageSet, removeTempFiles, writeFileAtomic } from '@vat/core/node';

import { dataGiven, describeData, fitToData, isIdxDirectory, loadData, modelShape, sourceFlags } from './data.js';
import { modelFlag, typedOptions } from './flags.js';
import { prepareOut } from './outdir.js';
import { Progress, confusionTable } from './progress.js';
import { FILES, emit, runTraining } from './run.js';

function defaultOut(preset: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  return path.join('runs', `${preset}-${stamp}`);
}

function interruptSignal(progress: Progress): AbortSignal {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) {
      removeTempFiles(); // a write cut short leaves no partial file (the lock goes on exit)
      process.exit(130);
    }
    progress.message('interrupt: finishing the current step and writing a checkpoint (press Ctrl-C again to quit now)');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  return controller.signal;
}

export async function trainCommand(cmd: Command): Promise<number> {
  const flags = cmd.opts();
  const progress = new Progress();
  const resume = flags.resume as string | undefined;
  const typed = { ...typedOptions(cmd), ...(await modelFlag(flags.model)) };
  let trainer: Trainer;
  let loop: LoopOptions;
  let out: string;
  let data!: Awaited<ReturnType<typeof loadData>>;
  if (resume !== undefined) {
    // A resume takes everything from the checkpoint; flags may change what a resume can change,
    // and only with --override (the core names any difference it refuses).
    if (resume.trim() === '')
      throw new InvalidConfigError('--resume was given an empty directory (an unset shell variable?); give the --out directory of an earlier run');
    if (flags.out !== undefined) throw new InvalidConfigError('--resume continues the run in its own directory; drop --out');
    if (flags.normalize !== undefined)
      throw new InvalidConfigError("a resume keeps the checkpoint's normalization (it is part of the model); drop --normalize");
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await fs.readFile(path.join(resume, FILES.checkpoint)));
    } catch (e) {
      throw new InvalidConfigError(`cannot resume from '${resume}': ${(e as Error).message}; --resume takes the --out directory of an earlier run`);
    }
    const { trainer: overrides, loop: loopOverrides } = splitOptions(typed);
    const { backend, engine, threads, ...settings } = overrides;
    trainer = await Trainer.fromCheckpoint(bytes, { backend, engine, threads, overrides: settings, allowOverrides: !!flags.override });
    loop = loopOverrides;
    out = resume;
  } else {
    if (flags.override) throw new InvalidConfigError('--override goes with --resume');
    out = (flags.out as string | undefined) ?? defaultOut(flags.preset);
    await prepareOut(out, true); // before any work: a directory that holds a run is refused
    data = await loadData(flags);
    progress.message(`data: ${describeData(data)}`);
    // The model takes the data's image size and classes; the split, sizes the data can hold.
    const normalization = flags.normalize === 'standardize' ? { normalization: channelStats(data.train) } : {};
    const options = await resolveOptions({ ...modelShape(data), ...normalization, ...typed }, flags.preset);
    for (const line of fitToData(options.loop, data.train.count, typed)) progress.message(line);
    trainer = await Trainer.create(options.trainer);
    loop = options.loop;
  }
  if (resume !== undefined) {
    // A resume trains on the data its checkpoint recorded unless other data is given (the loop
    // then refuses it if it differs, naming both).
    const recorded = dataGiven(flags) ? {} : sourceFlags(resumedData(trainer)?.source);
    data = await loadData({ ...flags, ...recorded });
    progress.message(`data: ${JSON.stringify(data.source)}${dataGiven(flags) ? '' : " (the run's own)"}`);
  }
  const io = {
    out,
    resume: resume !== undefined,
    allowOverrides: !!flags.override,
    json: !!flags.json,
    progress,
    signal: interruptSignal(progress),
    command: process.argv.slice(2),
  };
  progress.message(`output: ${out}`);
  const result = await runTraining(trainer, loop, data, io);
  result.trainer.dispose();
  if (result.interrupted) {
    progress.message(`interrupted at step ${result.step}; checkpoint saved. Resume with: pnpm --filter cli train --resume ${out}`);
    emit(io, { event: 'interrupted', step: result.step, out });
    return 130;
  }
  return 0;
}

export async function evalCommand(weightsFile: string, cmd: Command): Promise<number> {
  const flags = cmd.opts();
  const progress = new Progress();
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await fs.readFile(weightsFile));
  } catch (e) {
    throw new InvalidInputError(`cannot read weights '${weightsFile}': ${(e as Error).message}`);
  }
  let test: ImageSet;
  if (flags.testImages || flags.testLabels) {
    if (!(flags.testImages && flags.testLabels)) throw new InvalidConfigError('give both --test-images and --test-labels');
    test = await readImageSet(flags.testImages, flags.testLabels, 'test set');
  } else if (flags.data !== undefined && !(await isIdxDirectory(flags.data))) {
    // The test set train used: the source's own, or the same held-out examples.
    test = (await loadData(flags)).test;
  } else {
    test = await loadMnistTest(flags.data);
  }
  // The file is held to the model it declares before anything is built for it.
  const trainer = await Trainer.fromWeights(bytes, { backend: flags.backend, engine: flags.engine, threads: flags.threads });
  const want = inputShape(trainer);
  const got = [test.channels ?? 1, test.rows, test.cols];
  if (got.some((v, i) => v !== want[i])) {
    trainer.dispose();
    throw new InvalidInputError(`the test images are ${got.join('x')}, but the model in '${weightsFile}' takes ${want.join('x')} images`);
  }
  progress.message(`backend: ${trainer.adapter.description}`);
  const d = gather(test, all(test).indices);
  const started = performance.now();
  const r = await trainer.evaluate(d.x, d.y, (await resolveOptions({ evalBatchSize: flags.evalBatchSize })).loop.evalBatchSize);
  const seconds = (performance.now() - started) / 1000;
  trainer.dispose();
  if (flags.json) {
    emit(
      { json: true },
      { event: 'eval', weights: weightsFile, loss: r.loss, accuracy: r.accuracy, count: r.count, confusion: Array.from(r.confusion), seconds },
    );
  } else {
    process.stdout.write(`test: loss ${r.loss.toFixed(4)}  accuracy ${(100 * r.accuracy).toFixed(2)}%  (${r.count} images, ${seconds.toFixed(1)} s)\n`);
    process.stdout.write(`${confusionTable(r.confusion, Number(trainer.config.model.classes))}\n`);
  }
  return 0;
}

export async function compareCommand(cmd: Command): Promise<number> {
  const flags = cmd.opts();
  const progress = new Progress();
  const typed = typedOptions(cmd);
  const fixed = (['vat', 'dropout'] as const).filter((k) => typed[k] !== undefined);
  if (fixed.length) {
    throw new InvalidConfigError(
      `compare runs every combination of dropout and VAT itself; drop ${fixed.map((k) => `--${typed[k] ? '' : 'no-'}${k}`).join(', ')}`,
    );
  }
  const out = (flags.out as string | undefined) ?? defaultOut('compare');
  const names = SEED_TABLE.map((r) => `${r.dropout ? 'dropout' : 'no-dropout'}_${r.vat ? 'vat' : 'no-vat'}`);
  await prepareOut(out, true, ['compare.json', 'compare.md', ...names]);
  const data = await loadData(flags);
  const base = await resolveOptions({ ...modelShape(data), ...typed }, flags.preset);
  for (const line of fitToData(base.loop, data.train.count, typed)) progress.message(line);
  const signal = interruptSignal(progress);
  const rows: Record<string, unknown>[] = [];
  for (const seedRow of SEED_TABLE) {
    const name = `${seedRow.dropout ? 'dropout' : 'no-dropout'}_${seedRow.vat ? 'vat' : 'no-vat'}`;
    progress.message(`\n== ${name} ==`);
    const trainer = await Trainer.create({ ...base.trainer, dropout: seedRow.dropout, vat: seedRow.vat });
    const r = await runTraining(trainer, base.loop, data, {
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
  const note = `Ours: ${rows[0]?.backend}, ${base.loop.epochs} epoch(s)${base.loop.trainSize ? `, ${base.loop.trainSize} training examples` : ''}. Seed: Keras, 12 epochs, full MNIST.`;
  await writeFileAtomic(path.join(out, 'compare.json'), JSON.stringify({ options: { ...base.trainer, ...base.loop }, rows }, null, 2));
  await writeFileAtomic(path.join(out, 'compare.md'), `${table}\n\n${note}\n`);
  if (flags.json) emit({ json: true }, { event: 'compare', rows });
  else process.stdout.write(`\n${table}\n\n${note}\n`);
  return 0;
}
