// Datasets in the formats people already have, each checked before a number reaches the model:
// CSV in the common Kaggle layout, NumPy .npy/.npz arrays, and decoded images (an ImageFolder
// of class subfolders: '@vat/core/node' reads one with pngjs and jpeg-js). Everything comes out
// as an ImageSet (idx.ts): one label and channels x rows x cols pixels per example, CHW.
// Every failure is an InvalidInputError that names the file, and the row or array, at fault.

import { unzipSync } from 'fflate';

import { InvalidInputError } from './errors.js';
import type { ImageSet } from './idx.js';

/** An image's shape: channels x rows x cols. */
export interface ImageShape {
  channels: number;
  rows: number;
  cols: number;
}

/** Parses "28x28" (one channel) or "3x32x32" (channels first). */
export function parseShape(text: string): ImageShape {
  const parts = text.trim().toLowerCase().split('x').map(Number);
  const ok = (n: number) => Number.isSafeInteger(n) && n >= 1;
  if ((parts.length === 2 || parts.length === 3) && parts.every(ok)) {
    const [channels, rows, cols] = parts.length === 2 ? [1, parts[0]!, parts[1]!] : (parts as [number, number, number]);
    return { channels, rows, cols };
  }
  throw new InvalidInputError(`image shape '${text}' is not HxW or CxHxW (for example 28x28 or 3x32x32)`);
}

const showShape = (s: ImageShape) => `${s.channels}x${s.rows}x${s.cols}`;

/** The most classes a label byte holds. */
const MAX_CLASSES = 256;

/** Checks labels (integers in 0..classes-1, or 0..255 when classes is not given) and returns them as bytes. */
function checkLabels(values: ArrayLike<number>, where: (i: number) => string, classes?: number): Uint8Array {
  const top = (classes ?? MAX_CLASSES) - 1;
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!(Number.isInteger(v) && v >= 0 && v <= top)) {
      throw new InvalidInputError(`${where(i)}: label ${v} is not a class index in 0..${top}${classes ? '' : ' (labels are integers from 0)'}`);
    }
    out[i] = v;
  }
  return out;
}

/**
 * Pixels as the model will see them: stored as bytes when every value is an integer in 0..255,
 * else as float32, with the scale that maps them to [0, 1]: 255 for values up to 255, 1 for
 * values that are already in [0, 1] (floats, or 0/1 images). Values outside [0, 255] are refused:
 * `name` and `where` say which.
 */
function pixelsOf(values: Float32Array, name: string, where: (i: number) => string): { images: Uint8Array | Float32Array; pixelScale: number } {
  let integers = true;
  let max = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!(v >= 0 && v <= 255)) {
      throw new InvalidInputError(`${name}, ${where(i)}: pixel value ${v} is outside 0..255; give pixels in 0..255, or already scaled to 0..1`);
    }
    if (!Number.isInteger(v)) integers = false;
    if (v > max) max = v;
  }
  const pixelScale = max <= 1 ? 1 : 255;
  return { images: integers ? Uint8Array.from(values) : values, pixelScale };
}

/**
 * Refuses a test set whose pixels are scaled otherwise than the training set's (0..255 against
 * [0, 1]): the two would reach the model on different scales.
 */
export function checkSameScale(train: ImageSet, test: ImageSet, name: string): void {
  const a = train.pixelScale ?? 255;
  const b = test.pixelScale ?? 255;
  if (a !== b) {
    const says = (s: number) => (s === 1 ? 'lie in [0, 1]' : 'go up to 255');
    throw new InvalidInputError(`${name}: the training pixels ${says(a)} but the test pixels ${says(b)}; give both sets on one scale`);
  }
}

/** The shape of `pixels` values per example: the one given, or a square single-channel image. */
function shapeFor(pixels: number, name: string, shape?: ImageShape): ImageShape {
  if (shape) {
    if (shape.channels * shape.rows * shape.cols !== pixels) {
      throw new InvalidInputError(
        `${name}: ${pixels} pixel values per example do not make images of ${showShape(shape)} (${shape.channels * shape.rows * shape.cols})`,
      );
    }
    return shape;
  }
  const side = Math.round(Math.sqrt(pixels));
  if (side * side !== pixels) {
    throw new InvalidInputError(`${name}: ${pixels} pixel values per example are not a square grey image; give the image shape (--image-shape CxHxW)`);
  }
  return { channels: 1, rows: side, cols: side };
}

/**
 * A CSV in the Kaggle layout: a label column, then the pixel columns (row-major, channels first
 * when there are several). A header row is optional (a first row that is not all numbers is one).
 * Without `shape` the pixels must make a square grey image (784 columns: 28x28).
 */
export function parseCsv(text: string, options: { name: string; shape?: ImageShape; classes?: number }): ImageSet {
  const { name } = options;
  const lines = text.split(/\r?\n/);
  while (lines.length && lines[lines.length - 1]!.trim() === '') lines.pop();
  let first = 0;
  if (lines.length && lines[0]!.split(',').some((c) => c.trim() !== '' && Number.isNaN(Number(c.replace(/"/g, ''))))) first = 1;
  const rows = lines.length - first;
  if (rows <= 0) throw new InvalidInputError(`${name} holds no data rows`);
  const width = lines[first]!.split(',').length;
  if (width < 2) throw new InvalidInputError(`${name}, line ${first + 1}: ${width} column; the layout is a label column, then the pixel columns`);
  const px = width - 1;
  const shape = shapeFor(px, name, options.shape);
  const values = new Float32Array(rows * px);
  const labels = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const line = lines[first + r]!;
    const cells = line.split(',');
    if (cells.length !== width) {
      throw new InvalidInputError(
        `${name}, line ${first + r + 1}: ${cells.length} columns, but line ${first + 1} has ${width}; every row needs a label and ${px} pixels`,
      );
    }
    for (let c = 0; c < width; c++) {
      const cell = cells[c]!;
      const v = cell.trim() === '' ? Number.NaN : Number(cell);
      if (!Number.isFinite(v)) {
        throw new InvalidInputError(`${name}, line ${first + r + 1}, column ${c + 1}: '${cell.trim()}' is not a number`);
      }
      if (c === 0) labels[r] = v;
      else values[r * px + c - 1] = v;
    }
  }
  const y = checkLabels(labels, (i) => `${name}, line ${first + i + 1}`, options.classes);
  const pixels = pixelsOf(values, name, (i) => `line ${first + Math.floor(i / px) + 1}, column ${(i % px) + 2}`);
  return { ...pixels, labels: y, count: rows, ...shape };
}

/** A NumPy array as read from a .npy file. */
export interface NpyArray {
  /** NumPy's dtype string, e.g. '<f4' or '|u1'. */
  dtype: string;
  shape: number[];
  data: Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Reads a .npy file (format versions 1-3, little-endian numeric dtypes, C order). */
export function parseNpy(bytes: Uint8Array, name: string): NpyArray {
  if (bytes.length < 10 || NPY_MAGIC.some((b, i) => bytes[i] !== b)) throw new InvalidInputError(`${name} is not a .npy file (no \\x93NUMPY magic)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6]!;
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (start + headerLen > bytes.length) throw new InvalidInputError(`${name} is truncated inside its header`);
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new InvalidInputError(`${name}: the .npy header is not NumPy's ('${header.trim()}')`);
  if (fortran === 'True') throw new InvalidInputError(`${name} is in Fortran order; save it with np.ascontiguousarray(a)`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const kinds: Record<string, [number, new (b: ArrayBuffer) => NpyArray['data']]> = {
    u1: [1, Uint8Array],
    i1: [1, Int8Array],
    b1: [1, Uint8Array],
    u2: [2, Uint16Array],
    i2: [2, Int16Array],
    u4: [4, Uint32Array],
    i4: [4, Int32Array],
    f4: [4, Float32Array],
    f8: [8, Float64Array],
  };
  const order = descr[0];
  const kind = descr.slice(1);
  if (order === '>') throw new InvalidInputError(`${name} is big-endian (${descr}); save it with a.astype('<${kind}')`);
  const body = bytes.subarray(start + headerLen);
  const count = shape.reduce((a, b) => a * b, 1);
  if (kind === 'i8' || kind === 'u8') {
    if (body.length !== count * 8)
      throw new InvalidInputError(`${name}: shape (${shape.join(', ')}) of ${descr} needs ${count * 8} bytes of data, but the file holds ${body.length}`);
    // int64 labels are common (np.int64 is NumPy's default integer); kept exactly while they fit.
    const big = new BigInt64Array(body.slice().buffer);
    const out = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const v = kind === 'u8' ? BigInt.asUintN(64, big[i]!) : big[i]!;
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidInputError(`${name}: value ${v} at ${i} is too large`);
      out[i] = Number(v);
    }
    return { dtype: descr, shape, data: out };
  }
  const k = kinds[kind];
  if (!k || !['<', '|', '='].includes(order!)) {
    throw new InvalidInputError(`${name} holds dtype ${descr}; use uint8, an integer type or float32/float64`);
  }
  if (body.length !== count * k[0]) {
    throw new InvalidInputError(
      `${name}: shape (${shape.join(', ')}) of ${descr} needs ${count * k[0]} bytes of data, but the file holds ${body.length}; it is truncated or corrupt`,
    );
  }
  return { dtype: descr, shape, data: new k[1](body.slice().buffer) };
}

/** The arrays of a .npz file (a zip of .npy files), by name without '.npy'. */
export function parseNpz(bytes: Uint8Array, name: string): Record<string, NpyArray> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (e) {
    throw new InvalidInputError(`${name} is not a readable .npz (zip) file: ${(e as Error).message}`);
  }
  const out: Record<string, NpyArray> = {};
  for (const [file, data] of Object.entries(files)) {
    if (file.endsWith('.npy')) out[file.slice(0, -4)] = parseNpy(data, `${name}:${file}`);
  }
  return out;
}

/**
 * An ImageSet from an images array and a labels array, as NumPy users hold them: images of
 * (N, H, W), (N, H, W, C) (channels last, as Keras and PIL give them) or (N, C, H, W) with C 1 or
 * 3, or (N, P) with `shape`; labels of (N) or (N, 1) class indices.
 */
export function imageSetFromArrays(x: NpyArray, y: NpyArray, name: string, options: { shape?: ImageShape; classes?: number } = {}): ImageSet {
  const n = x.shape[0] ?? 0;
  if (x.shape.length < 2 || n === 0) throw new InvalidInputError(`${name}: the images array has shape (${x.shape.join(', ')}); it needs one row per example`);
  if (!(y.shape.length === 1 || (y.shape.length === 2 && y.shape[1] === 1)) || y.shape[0] !== n) {
    throw new InvalidInputError(
      `${name}: ${n} images but labels of shape (${y.shape.join(', ')}); labels are one class index per image (for one-hot labels, save y.argmax(1))`,
    );
  }
  let shape: ImageShape;
  let channelsLast = false;
  const s = x.shape;
  if (s.length === 2) shape = shapeFor(s[1]!, name, options.shape);
  else if (s.length === 3) shape = { channels: 1, rows: s[1]!, cols: s[2]! };
  else if (s.length === 4 && [1, 3].includes(s[3]!)) {
    shape = { channels: s[3]!, rows: s[1]!, cols: s[2]! };
    channelsLast = true;
  } else if (s.length === 4 && [1, 3].includes(s[1]!)) shape = { channels: s[1]!, rows: s[2]!, cols: s[3]! };
  else throw new InvalidInputError(`${name}: images of shape (${s.join(', ')}) are not (N, H, W), (N, H, W, C) or (N, C, H, W) with 1 or 3 channels`);
  const px = shape.channels * shape.rows * shape.cols;
  const values = new Float32Array(n * px);
  const src = x.data;
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    if (!Number.isFinite(v)) {
      throw new InvalidInputError(`${name}: image ${Math.floor(i / px)} holds ${v}; every pixel must be a finite number`);
    }
  }
  if (channelsLast) {
    const { channels: c, rows: h, cols: w } = shape;
    for (let i = 0; i < n; i++) for (let p = 0; p < h * w; p++) for (let k = 0; k < c; k++) values[i * px + k * h * w + p] = src[i * px + p * c + k]!;
  } else {
    values.set(src);
  }
  const labels = checkLabels(y.data, (i) => `${name}: label ${i}`, options.classes);
  const pixels = pixelsOf(values, name, (i) => `image ${Math.floor(i / px)}`);
  return { ...pixels, labels, count: n, ...shape };
}

/** One decoded image of an ImageFolder: interleaved pixels (HWC), 1, 3 or 4 (RGBA) channels. */
export interface DecodedImage {
  file: string;
  label: number;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
  data: Uint8Array;
}

/**
 * An ImageSet from decoded images. They must share one size. Colour images whose pixels are all
 * grey (R = G = B, as many grey PNGs and scans are stored) become one channel, others three;
 * alpha is dropped.
 */
export function imageSetFromImages(images: DecodedImage[], name: string): ImageSet {
  if (images.length === 0) throw new InvalidInputError(`${name} holds no images`);
  const { width, height } = images[0]!;
  for (const im of images) {
    if (im.width !== width || im.height !== height) {
      throw new InvalidInputError(
        `${im.file} is ${im.width}x${im.height} pixels, but ${images[0]!.file} is ${width}x${height}; every image of a data set must have one size`,
      );
    }
  }
  const colour = images.some((im) => {
    if (im.channels === 1) return false;
    for (let p = 0; p < width * height; p++) {
      const o = p * im.channels;
      if (im.data[o] !== im.data[o + 1] || im.data[o] !== im.data[o + 2]) return true;
    }
    return false;
  });
  const channels = colour ? 3 : 1;
  const plane = width * height;
  const px = channels * plane;
  const out = new Uint8Array(images.length * px);
  images.forEach((im, i) => {
    for (let p = 0; p < plane; p++) for (let k = 0; k < channels; k++) out[i * px + k * plane + p] = im.data[p * im.channels + (im.channels === 1 ? 0 : k)]!;
  });
  return { images: out, labels: Uint8Array.from(images.map((im) => im.label)), count: images.length, channels, rows: height, cols: width, pixelScale: 255 };
}

/** Where a data set's training and (if it has one) test examples are, and how they were read. */
export interface Dataset {
  train: ImageSet;
  /** Absent when the source holds no test set: the caller holds one out (heldOutSplit). */
  test?: ImageSet;
  /** 'idx', 'image-folder', 'csv', 'npz' or 'npy'. */
  format: string;
  classNames?: string[];
}

/** Training and test arrays out of named arrays: x_train/y_train/x_test/y_test (Keras) or x/y. */
export function datasetFromArrays(arrays: Record<string, NpyArray>, name: string, format: string, options: { shape?: ImageShape }): Dataset {
  const set = (x: string, y: string) => imageSetFromArrays(arrays[x]!, arrays[y]!, `${name} (${x}, ${y})`, options);
  if (arrays.x_train && arrays.y_train) {
    return { train: set('x_train', 'y_train'), test: arrays.x_test && arrays.y_test ? set('x_test', 'y_test') : undefined, format };
  }
  if (arrays.x && arrays.y) return { train: set('x', 'y'), format };
  throw new InvalidInputError(
    `${name} holds the arrays ${Object.keys(arrays).join(', ') || '(none)'}; name them x_train, y_train (and x_test, y_test), or x and y, e.g. np.savez('data.npz', x=images, y=labels)`,
  );
}
