// One training run with its output directory: run.json, metrics.jsonl, checkpoint and weights.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { type EpochStats, type ImageSet, type RunOptions, type RunResult, Trainer, resolveRunOptions, train } from '@vat/core';
import { FileCheckpointStore, writeFileAtomic } from '@vat/core/node';

import { type Progress, confusionTable, epochLine } from './progress.js';

export const FILES = {
  run: 'run.json',
  metrics: 'metrics.jsonl',
  checkpoint: 'checkpoint.safetensors',
  weights: 'weights.safetensors',
} as const;

export interface RunIo {
  out: string;
  resume: boolean;
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

export function emit(io: { json: boolean }, event: Record<string, unknown>): void {
  if (io.json) process.stdout.write(`${JSON.stringify(event)}\n`);
}

/** Trains with `options` and writes everything to `io.out`. */
export async function runTraining(options: RunOptions, data: { train: ImageSet; test: ImageSet }, io: RunIo): Promise<RunResult & { trainer: Trainer }> {
  const resolved = resolveRunOptions(options);
  await fs.mkdir(io.out, { recursive: true });
  const trainer = await Trainer.create(resolved);
  const say = (text: string) => (io.json ? io.progress.message(text) : process.stdout.write(`${text}\n`));
  io.progress.message(`backend: ${trainer.adapter.description}${trainer.adapter.reason ? ` (${trainer.adapter.reason})` : ''}`);
  const runFile = path.join(io.out, FILES.run);
  const run: Record<string, unknown> = {
    status: 'running',
    command: io.command,
    options: resolved,
    coreConfig: trainer.config,
    seed: resolved.seed ?? 42,
    backend: trainer.adapter,
    engine: trainer.engine,
    threads: trainer.threads,
    versions: versions(trainer),
    machine: machine(),
    started: new Date().toISOString(),
  };
  await writeFileAtomic(runFile, JSON.stringify(run, null, 2));
  const valLabel = (resolved.valSize ?? 5000) > 0 ? 'val' : 'val(test)';
  const finish = async (status: string, extra: Record<string, unknown>) => {
    Object.assign(run, { status, finished: new Date().toISOString() }, extra);
    await writeFileAtomic(runFile, JSON.stringify(run, null, 2));
  };
  let result: RunResult;
  try {
    result = await train(
      trainer,
      data,
      resolved,
      {
        onStep: (p) => io.progress.step(p),
        onEpoch: async (e: EpochStats, history: EpochStats[]) => {
          io.progress.clear();
          say(epochLine(e, resolved.epochs, valLabel));
          emit(io, { event: 'epoch', ...e });
          await writeFileAtomic(path.join(io.out, FILES.metrics), `${history.map((h) => JSON.stringify(h)).join('\n')}\n`);
        },
      },
      { store: new FileCheckpointStore(path.join(io.out, FILES.checkpoint)), resume: io.resume, signal: io.signal },
    );
  } catch (err) {
    io.progress.clear();
    await finish('failed', { error: { name: (err as Error).name, message: (err as Error).message } }).catch(() => {});
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
