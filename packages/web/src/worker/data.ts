// Data in the worker: the bundled MNIST fetched gzipped, the user's idx files (plain or .gz),
// each checked against the demo's 28x28 model.
import { type ImageSet, InvalidConfigError, InvalidInputError, parseImageSet } from '@vat/core';

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

function checkShape(set: ImageSet, what: string): ImageSet {
  if (set.rows !== 28 || set.cols !== 28) {
    throw new InvalidInputError(`${what}: images are ${set.rows}x${set.cols}; this demo's model and drawing pad take 28x28 images`);
  }
  return set;
}

export function summary(): DataSummary {
  const d = need(session.data, 'no data is loaded');
  const s = (set: ImageSet, source: string) => ({ count: set.count, rows: set.rows, cols: set.cols, source });
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
    return [checkShape(set, `${what} set`), images.name];
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
