// Data in the worker: the bundled MNIST fetched gzipped, the user's idx files (plain or .gz), and
// a data set the user drops (a CSV, a .npz, or a folder of class subfolders of PNG/JPEG), of any
// image shape: the run's model is built for it.
import {
  type DecodedImage,
  type ImageSet,
  InvalidConfigError,
  InvalidInputError,
  checkSameScale,
  datasetFromArrays,
  holdOut,
  imageSetFromImages,
  parseCsv,
  parseImageSet,
  parseNpz,
} from '@vat/core';

import type { DataSummary, WorkerApi } from '../protocol.js';
import { need, notRunning, session } from './session.js';

const MNIST_FILES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];

/**
 * A gzipped file, inflated with the browser's DecompressionStream. A server may instead send it
 * with Content-Encoding: gzip (vite's preview, many static hosts), and then the browser has
 * inflated it already: the gzip magic decides.
 */
async function fetchGzip(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new InvalidInputError(`could not fetch ${url} (HTTP ${r.status})`);
  return inflated(new Uint8Array(await r.arrayBuffer()), url);
}

/** `bytes` inflated when they are gzip (idx files are often kept as .gz), else as they are. */
async function inflated(bytes: Uint8Array, name: string): Promise<Uint8Array> {
  if (!(bytes[0] === 0x1f && bytes[1] === 0x8b)) return bytes;
  try {
    return new Uint8Array(await new Response(new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('gzip'))).arrayBuffer());
  } catch (e) {
    throw new InvalidInputError(`${name} is gzip-compressed but does not inflate: ${(e as Error).message}`);
  }
}

export function summary(): DataSummary {
  const d = need(session.data, 'no data is loaded');
  const s = (set: ImageSet, source: string) => ({ count: set.count, channels: set.channels ?? 1, rows: set.rows, cols: set.cols, source });
  const [trainSource, testSource] = d.source.split(' | ');
  return { train: s(d.train, trainSource!), test: s(d.test, testSource ?? trainSource!) };
}

export const loadMnist: WorkerApi['loadMnist'] = async (baseUrl) => {
  notRunning('change the data');
  if (!session.mnist) {
    // Fetched gzipped (11 MB instead of 55 MB) and inflated here, as the browser streams it in.
    const [ti, tl, xi, xl] = await Promise.all(MNIST_FILES.map((f) => fetchGzip(new URL(`${f}.gz`, baseUrl).href)));
    session.mnist = { train: parseImageSet(ti!, tl!, 'MNIST train'), test: parseImageSet(xi!, xl!, 'MNIST test') };
  }
  session.data = { ...session.mnist, source: 'MNIST' };
  return summary();
};

export const loadFiles: WorkerApi['loadFiles'] = async (files) => {
  notRunning('change the data');
  const pair = async (images: File | undefined, labels: File | undefined, what: string): Promise<[ImageSet, string] | undefined> => {
    if (!images && !labels) return undefined;
    if (!images || !labels) throw new InvalidInputError(`give both the images and the labels file of the ${what} set (or neither, to keep MNIST's)`);
    const set = parseImageSet(
      await inflated(new Uint8Array(await images.arrayBuffer()), images.name),
      await inflated(new Uint8Array(await labels.arrayBuffer()), labels.name),
      `${what} set (${images.name}, ${labels.name})`,
    );
    return [set, images.name];
  };
  const tr = await pair(files.trainImages, files.trainLabels, 'training');
  const te = await pair(files.testImages, files.testLabels, 'test');
  if (!tr && !te) throw new InvalidInputError('choose idx files first');
  const mnist = session.mnist;
  if ((!tr || !te) && !mnist) throw new InvalidConfigError('MNIST is not loaded yet; give all four files');
  session.data = {
    train: tr?.[0] ?? mnist!.train,
    test: te?.[0] ?? mnist!.test,
    source: `${tr ? tr[1] : 'MNIST'} | ${te ? te[1] : 'MNIST'}`,
  };
  return summary();
};

/** Decodes one PNG or JPEG with the browser's own decoder; an unreadable one is named. */
async function decodeImage(file: File, path: string, label: number): Promise<DecodedImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (e) {
    throw new InvalidInputError(`${path} is not a readable image: ${(e as Error).message}`);
  }
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d')!;
  ctx.drawImage(bitmap, 0, 0);
  const data = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
  bitmap.close();
  return { file: path, label, width: canvas.width, height: canvas.height, channels: 4, data: new Uint8Array(data.buffer) };
}

const IMAGE = /\.(png|jpe?g)$/i;

/**
 * An image folder from its files' paths (a dropped or chosen folder): the class is each image's
 * parent folder; a top level of train/ and test/ gives the two sets, which must have the same
 * classes (in the sorted order of their names, as on the command line).
 */
async function imageFolder(entries: { path: string; file: File }[]): Promise<{ train: ImageSet; test?: ImageSet; classes: string[] }> {
  const images = entries.filter((e) => IMAGE.test(e.path));
  if (images.length === 0) throw new InvalidInputError('the folder holds no PNG or JPEG images; an image folder has one subfolder of images per class');
  const parts = images.map((e) => e.path.split('/').filter(Boolean));
  if (parts.some((p) => p.length < 2))
    throw new InvalidInputError(
      `${images[parts.findIndex((p) => p.length < 2)]!.path} is not in a class folder; put each class's images in a folder named after it`,
    );
  const top = (p: string[]) => (p.length >= 3 ? p[p.length - 3] : undefined);
  const split = parts.every((p) => top(p) === 'train' || top(p) === 'test') && parts.some((p) => top(p) === 'test') && parts.some((p) => top(p) === 'train');
  const classOf = (p: string[]) => p[p.length - 2]!;
  const read = async (which: string | undefined, classes?: string[]) => {
    const mine = images.filter((_, i) => !which || top(parts[i]!) === which);
    const names = [...new Set(mine.map((e) => classOf(e.path.split('/').filter(Boolean))))].sort();
    if (classes && names.join('/') !== classes.join('/')) {
      throw new InvalidInputError(
        `the ${which} folder has the classes ${names.join(', ')}, but the training folder has ${classes.join(', ')}; they must be the same`,
      );
    }
    const decoded: DecodedImage[] = [];
    for (const e of mine) decoded.push(await decodeImage(e.file, e.path, names.indexOf(classOf(e.path.split('/').filter(Boolean)))));
    return { set: imageSetFromImages(decoded, which ? `the ${which} folder` : 'the folder'), names };
  };
  if (!split) {
    const { set, names } = await read(undefined);
    return { train: set, classes: names };
  }
  const train = await read('train');
  const test = await read('test', train.names);
  return { train: train.set, test: test.set, classes: train.names };
}

/**
 * A data set the user dropped or chose: one CSV (Kaggle layout) or .npz, or a folder of class
 * subfolders. Without a test set of its own, a tenth is held out (seed 0, as the CLI does).
 */
export const loadDataset: WorkerApi['loadDataset'] = async (entries) => {
  notRunning('change the data');
  if (entries.length === 0) throw new InvalidInputError('nothing was dropped or chosen');
  let train: ImageSet;
  let test: ImageSet | undefined;
  let source: string;
  const single = entries.length === 1 ? entries[0]! : undefined;
  if (single && /\.csv(\.gz)?$/i.test(single.path)) {
    const bytes = await inflated(new Uint8Array(await single.file.arrayBuffer()), single.path);
    train = parseCsv(new TextDecoder().decode(bytes), { name: single.path });
    source = single.path;
  } else if (single && /\.npz$/i.test(single.path)) {
    const d = datasetFromArrays(parseNpz(new Uint8Array(await single.file.arrayBuffer()), single.path), single.path, 'npz', {});
    train = d.train;
    test = d.test;
    source = single.path;
  } else if (entries.some((e) => IMAGE.test(e.path))) {
    const d = await imageFolder(entries);
    train = d.train;
    test = d.test;
    source = `${entries[0]!.path.split('/').filter(Boolean)[0]}/ (${d.classes.length} classes: ${d.classes.join(', ')})`;
  } else {
    throw new InvalidInputError(
      `cannot tell the format of ${single ? single.path : 'these files'}: drop a .csv, a .npz, or a folder of class subfolders of PNG or JPEG images`,
    );
  }
  if (!test) {
    const held = holdOut(train);
    train = held.train;
    test = held.test;
    source = `${source} (a tenth held out as the test set)`;
  }
  checkSameScale(train, test, source);
  session.data = { train, test, source: `${source} | ${source}` };
  return summary();
};
