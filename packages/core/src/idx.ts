// The idx format of the MNIST files (LeCun et al.): a big-endian header, then raw bytes.
//   magic: 0x00 0x00 <type> <ndims>; type 0x08 = unsigned byte. Images: 2051 (3 dims),
//   labels: 2049 (1 dim). Then one u32 per dimension, then prod(dims) bytes.
// Every check below rejects a file rather than letting a wrong number through.

import { InvalidInputError } from './errors.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

export const IMAGES_MAGIC = 2051;
export const LABELS_MAGIC = 2049;

export function parseIdx(bytes: Uint8Array, what = 'idx file'): IdxArray {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    throw new InvalidInputError(
      `${what} is gzip-compressed; decompress it first (gunzip), or read it with readImageSet from '@vat/core/node', which inflates it`,
    );
  }
  if (bytes.length < 8) {
    throw new InvalidInputError(`${what} is ${bytes.length} bytes long, too short for an idx header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new InvalidInputError(`${what} does not start with an idx magic number (first bytes ${bytes[0]}, ${bytes[1]})`);
  }
  if (bytes[2] !== 0x08) {
    throw new InvalidInputError(`${what} holds element type 0x${bytes[2]!.toString(16)}; only unsigned bytes (0x08) are supported`);
  }
  const ndims = bytes[3]!;
  if (ndims < 1 || ndims > 4) throw new InvalidInputError(`${what} declares ${ndims} dimensions`);
  const header = 4 + 4 * ndims;
  if (bytes.length < header) throw new InvalidInputError(`${what} is truncated inside its header`);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const expected = dims.reduce((a, b) => a * b, 1);
  const actual = bytes.length - header;
  if (actual !== expected) {
    throw new InvalidInputError(
      `${what} declares dimensions ${dims.join('x')} (${expected} bytes of data) but holds ${actual}; the file is truncated or corrupt`,
    );
  }
  return { dims, data: bytes.subarray(header) };
}

export interface ImageSet {
  /**
   * Pixels, `count * channels * rows * cols`, each image channels first (CHW) and row-major:
   * bytes from idx and image files, float32 from CSV or NumPy data that are not all integers in
   * 0..255. The model sees them divided by `pixelScale` (data.ts, gather).
   */
  images: Uint8Array | Float32Array;
  /** What maps the pixels to [0, 1]: 255 (idx, images, 0..255 data; the default) or 1 (data already in [0, 1]). */
  pixelScale?: number;
  /** One class index per image. */
  labels: Uint8Array;
  count: number;
  /** 1 (grey) when absent. */
  channels?: number;
  rows: number;
  cols: number;
}

/** The pixel values of one image of `set`. */
export const pixelsPerImage = (set: ImageSet) => (set.channels ?? 1) * set.rows * set.cols;

/** Parses an images file and a labels file and checks that they belong together. */
export function parseImageSet(imagesBytes: Uint8Array, labelsBytes: Uint8Array, name = 'dataset', classes = 10): ImageSet {
  // The format checks first (gzip, empty, element type, truncation), so their messages are the
  // ones a user sees; then the magic numbers tell an images file from a labels file.
  const images = parseIdx(imagesBytes, `${name} images`);
  const labels = parseIdx(labelsBytes, `${name} labels`);
  const magicOf = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 4).getUint32(0, false);
  if (magicOf(imagesBytes) !== IMAGES_MAGIC) {
    throw new InvalidInputError(
      `${name} images: magic number ${magicOf(imagesBytes)} is not ${IMAGES_MAGIC}; is this an idx images file (e.g. train-images-idx3-ubyte)?`,
    );
  }
  if (magicOf(labelsBytes) !== LABELS_MAGIC) {
    throw new InvalidInputError(
      `${name} labels: magic number ${magicOf(labelsBytes)} is not ${LABELS_MAGIC}; is this an idx labels file (e.g. train-labels-idx1-ubyte)?`,
    );
  }
  const [count, rows, cols] = images.dims as [number, number, number];
  if (labels.dims[0] !== count) {
    throw new InvalidInputError(`${name}: ${count} images but ${labels.dims[0]} labels; they must match`);
  }
  if (count === 0) throw new InvalidInputError(`${name} holds no images`);
  if (rows !== cols) throw new InvalidInputError(`${name}: images are ${rows}x${cols}; only square images are supported`);
  const bad = labels.data.findIndex((l) => l >= classes);
  if (bad >= 0) {
    throw new InvalidInputError(`${name}: label ${labels.data[bad]} at index ${bad} is outside 0..${classes - 1}`);
  }
  return { images: images.data, labels: labels.data, count, rows, cols };
}
