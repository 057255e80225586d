// One training run with its output directory: run.json, metrics.jsonl, checkpoint and weights.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  DivergedError,
  type EpochStats,
  type LoopOptions,
  NonFiniteLossError,
  type ResolvedLoopOptions,
  type RunResult,
  type TrainData,
  type Trainer,
  train,
} from '@vat/core';
import { FileCheckpointStore, writeFileAtomic } from '@vat/core/node';

import { FILES, lockOut, prepareOut } from './outdir.js';
import { type Progress, confusionTable, epochLine } from './progress.js';

export { FILES } from './outdir.js';

export interface RunIo {
  out: string;
  resume: boolean;
  /** With `resume`: let `loop` change the checkpoint's loop settings. */
  allowOverrides?: boolean;
  json: boolean;
  progress: Progress;
  signal?: AbortSignal;
  /** Written to run.json so a run can be traced back to how it was started. */
  command: string[];
}

function versions(trainer: Trainer): Record<string, string> {
  return { vatCore: trainer.coreVersion, node: process.version, platform: `${process.platform}-${process.arch}` };
}

function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return { cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, memoryGiB: Math.round(os.totalmem() / 2 ** 30) };
}

/** An earlier run.json, if there is one that parses as an object. */
async function readRecord(file: string): Promise<Record<string, unknown> | undefined> {
  try {
    const v: unknown = JSON.parse(await fs.readFile(file, 'utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function emit(io: { json: boolean }, event: Record<string, unknown>): void {
  if (io.json) process.stdout.write(`${JSON.stringify(event)}\n`);
}

/** Trains `trainer` with the loop's options `loop` and writes everything to `io.out`. */
export async function runTraining(trainer: Trainer, loop: LoopOptions, data: TrainData, io: RunIo): Promise<RunResult & { trainer: Trainer }> {
  try {
    await prepareOut(io.out, !io.resume);
  } catch (err) {
    trainer.dispose();
    throw err;
  }
  const release = await lockOut(io.out).catch((err) => {
    trainer.dispose();
    throw err;
  });
  try {
    return await runLocked(trainer, loop, data, io);
  } finally {
    release();
  }
}

async function runLocked(trainer: Trainer, loop: LoopOptions, data: TrainData, io: RunIo): Promise<RunResult & { trainer: Trainer }> {
  const say = (text: string) => (io.json ? io.progress.message(text) : process.stdout.write(`${text}\n`));
  io.progress.message(`backend: ${trainer.adapter.description}${trainer.adapter.reason ? ` (${trainer.adapter.reason})` : ''}`);
  const runFile = path.join(io.out, FILES.run);
  const now = new Date().toISOString();
  const here: Record<string, unknown> = {
    coreConfig: trainer.config,
    seed: trainer.options.seed,
    backend: trainer.adapter,
    engine: trainer.engine,
    threads: trainer.threads,
    versions: versions(trainer),
    machine: machine(),
  };
  // A resume keeps the run's record and adds to it; a fresh run starts one.
  let run: Record<string, unknown> = { status: 'running', command: io.command, ...here, started: now };
  if (io.resume) {
    const previous = await readRecord(runFile);
    const resumes = Array.isArray(previous?.resumes) ? previous.resumes : [];
    run = { ...previous, status: 'running', ...here, resumes: [...resumes, { at: now, command: io.command, overridden: trainer.resumed?.overridden ?? [] }] };
  }
  let loopOptions: ResolvedLoopOptions | undefined;
  const valLabel = () => (loopOptions!.valSize > 0 ? 'val' : 'val(test)');
  const finish = async (status: string, extra: Record<string, unknown>) => {
    Object.assign(run, { status, finished: new Date().toISOString() }, extra);
    await writeFileAtomic(runFile, JSON.stringify(run, null, 2));
  };
  let result: RunResult;
  try {
    result = await train(
      trainer,
      data,
      loop,
      {
        onStart: async (o, d) => {
          loopOptions = o;
          // One flat set, as the CLI flags name them.
          run.options = { ...trainer.options, ...o };
          // The checkpoint's record of the data (a resume's was checked to be the same data).
          run.data = d;
          await writeFileAtomic(runFile, JSON.stringify(run, null, 2));
        },
        onStep: (p) => io.progress.step(p),
        onBatchNorm: (images) => {
          io.progress.clear();
          say(`batch norm: running statistics re-estimated over ${images} training images`);
          emit(io, { event: 'batchNorm', images });
        },
        onEpoch: async (e: EpochStats, history: EpochStats[]) => {
          io.progress.clear();
          say(epochLine(e, loopOptions!.epochs, valLabel()));
          emit(io, { event: 'epoch', ...e });
          await writeFileAtomic(path.join(io.out, FILES.metrics), `${history.map((h) => JSON.stringify(h)).join('\n')}\n`);
        },
      },
      { store: new FileCheckpointStore(path.join(io.out, FILES.checkpoint)), resume: io.resume, allowOverrides: io.allowOverrides, signal: io.signal },
    );
  } catch (err) {
    io.progress.clear();
    // A run that never started (a refused resume, say) leaves the record as it was.
    if (loopOptions) await finish('failed', { error: { name: (err as Error).name, message: (err as Error).message } }).catch(() => {});
    if (err instanceof NonFiniteLossError || err instanceof DivergedError) {
      // True advice: whether a checkpoint from before the failure exists decides what to do.
      const saved = await fs.stat(path.join(io.out, FILES.checkpoint)).then(
        (s) => s.isFile(),
        () => false,
      );
      io.progress.message(
        saved
          ? `The checkpoint in ${io.out} holds the weights from before it; resume with a lower learning rate: --resume ${io.out} --lr <lower> --override`
          : `No checkpoint was written before it; train again with a lower --lr (or --eps).`,
      );
    }
    trainer.dispose();
    throw err;
  }
  if (result.interrupted) {
    await finish('interrupted', { step: result.step, seconds: result.seconds });
    return { ...result, trainer };
  }
  await writeFileAtomic(path.join(io.out, FILES.weights), await trainer.exportWeights());
  const test = result.test!;
  const classes = Number(trainer.config.model.classes);
  say(`test: loss ${test.loss.toFixed(4)}  accuracy ${(100 * test.accuracy).toFixed(2)}%  (${test.count} images, ${result.seconds.toFixed(1)} s in all)`);
  if (!io.json) say(confusionTable(test.confusion, classes));
  emit(io, { event: 'test', loss: test.loss, accuracy: test.accuracy, count: test.count, confusion: Array.from(test.confusion), seconds: result.seconds });
  await finish('finished', {
    step: result.step,
    seconds: result.seconds,
    test: { loss: test.loss, accuracy: test.accuracy, count: test.count, confusion: Array.from(test.confusion) },
    history: result.history,
  });
  return { ...result, trainer };
}
