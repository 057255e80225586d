// Splits, subsets and batches. Everything is a function of the run's seed and the epoch, so a
// resumed run sees exactly the batches the uninterrupted run would have seen.

import { InvalidConfigError, InvalidInputError } from './errors.js';
import { type ImageSet, pixelsPerImage } from './idx.js';
import { Rng } from './rng.js';

/** A view of some rows of an image set. */
export interface Subset {
  set: ImageSet;
  indices: Uint32Array;
}

export function all(set: ImageSet): Subset {
  const indices = new Uint32Array(set.count);
  for (let i = 0; i < set.count; i++) indices[i] = i;
  return { set, indices };
}

/** Splits off `valSize` rows for validation (seeded), then keeps `trainSize` of the rest. */
export function trainValSplit(set: ImageSet, seed: number, valSize: number, trainSize?: number): { train: Subset; val: Subset } {
  if (valSize < 0 || valSize >= set.count) {
    throw new InvalidConfigError(`valSize must be in [0, ${set.count - 1}], got ${valSize}`);
  }
  const perm = Rng.derive(seed, 'split').permutation(set.count);
  const val = perm.slice(0, valSize);
  let train = perm.slice(valSize);
  if (trainSize !== undefined) {
    if (trainSize < 1 || trainSize > train.length) {
      throw new InvalidConfigError(`trainSize must be in [1, ${train.length}] (after holding out ${valSize} for validation), got ${trainSize}`);
    }
    train = train.slice(0, trainSize);
  }
  return { train: { set, indices: train.sort() }, val: { set, indices: val.sort() } };
}

/**
 * Holds out `count` examples of `set` (a tenth by default) as a test set, for a source that has none: a seeded
 * permutation (seed 0 unless given), so every run on the same data holds out the same examples,
 * whatever its own seed. Returns both parts as image sets of their own.
 */
export function holdOut(set: ImageSet, count = Math.max(1, Math.round(set.count / 10)), seed = 0): { train: ImageSet; test: ImageSet } {
  if (!(Number.isSafeInteger(count) && count >= 1 && count < set.count)) {
    throw new InvalidConfigError(`the held-out test set must hold between 1 and ${set.count - 1} of the ${set.count} examples, got ${count}`);
  }
  const perm = Rng.derive(seed, 'held-out-test').permutation(set.count);
  const part = (rows: Uint32Array): ImageSet => {
    rows.sort();
    const px = pixelsPerImage(set);
    const images = new (set.images.constructor as new (n: number) => Uint8Array | Float32Array)(rows.length * px);
    for (const [i, r] of rows.entries()) images.set(set.images.subarray(r * px, (r + 1) * px), i * px);
    return { ...set, images, labels: Uint8Array.from(rows, (r) => set.labels[r]!), count: rows.length };
  };
  return { test: part(perm.slice(0, count)), train: part(perm.slice(count)) };
}

/** `n` rows with the classes as equal as possible (the paper's balanced labeled subset). */
export function balancedSubset(subset: Subset, n: number, seed: number, classes = 10): Subset {
  if (n < classes || n > subset.indices.length) {
    throw new InvalidConfigError(`the labeled subset must hold between ${classes} and ${subset.indices.length} examples, got ${n}`);
  }
  const byClass: number[][] = Array.from({ length: classes }, () => []);
  const perm = Rng.derive(seed, 'labeled').permutation(subset.indices.length);
  for (const p of perm) {
    const row = subset.indices[p]!;
    byClass[subset.set.labels[row]!]!.push(row);
  }
  const out: number[] = [];
  // Round-robin over classes until n rows are taken: counts differ by at most one.
  for (let round = 0; out.length < n; round++) {
    let took = false;
    for (let c = 0; c < classes && out.length < n; c++) {
      const row = byClass[c]![round];
      if (row !== undefined) {
        out.push(row);
        took = true;
      }
    }
    if (!took) break;
  }
  return { set: subset.set, indices: Uint32Array.from(out).sort() };
}

/** Per-channel mean and standard deviation of a set's pixels (after / pixelScale): a `normalization`. */
export function channelStats(set: ImageSet): { mean: number[]; std: number[] } {
  const c = set.channels ?? 1;
  const plane = set.rows * set.cols;
  const scale = set.pixelScale ?? 255;
  const sum = new Float64Array(c);
  const sq = new Float64Array(c);
  for (let i = 0; i < set.count; i++) {
    for (let k = 0; k < c; k++) {
      const base = (i * c + k) * plane;
      for (let p = 0; p < plane; p++) {
        const v = set.images[base + p]! / scale;
        sum[k] += v;
        sq[k] += v * v;
      }
    }
  }
  const n = set.count * plane;
  const mean = Array.from(sum, (s) => s / n);
  const std = Array.from(sq, (s, k) => Math.sqrt(Math.max(s / n - mean[k]! ** 2, 0)));
  if (std.some((s) => !(s > 0))) {
    throw new InvalidInputError(`a channel of the training images is constant (std ${std.map((s) => s.toPrecision(3)).join(', ')}); it cannot be standardised`);
  }
  return { mean, std };
}

/** Pixels scaled to [0, 1] (divided by the set's pixelScale, 255 by default) as float32, and labels, for the given rows. */
export function gather(set: ImageSet, rows: ArrayLike<number>): { x: Float32Array; y: Uint32Array } {
  const px = pixelsPerImage(set);
  const scale = set.pixelScale ?? 255;
  const x = new Float32Array(rows.length * px);
  const y = new Uint32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    const src = set.images.subarray(r * px, (r + 1) * px);
    for (let j = 0; j < px; j++) x[i * px + j] = src[j]! / scale;
    y[i] = set.labels[r]!;
  }
  return { x, y };
}

/** The order of `subset` in pass `pass` of the stream `stream` (e.g. 'labeled', 'unlabeled'). */
export function epochOrder(subset: Subset, seed: number, stream: string, pass: number): Uint32Array {
  const perm = Rng.derive(seed, stream, pass).permutation(subset.indices.length);
  return perm.map((p) => subset.indices[p]!);
}

/**
 * Row indices of batch `b` of an endless stream of shuffled passes over `subset`. Batches wrap
 * into the next pass, so a small labeled set can feed a long run of unlabeled batches.
 */
export function streamBatch(subset: Subset, seed: number, stream: string, batchSize: number, b: number): Uint32Array {
  const n = subset.indices.length;
  const out = new Uint32Array(batchSize);
  let start = b * batchSize;
  for (let i = 0; i < batchSize; i++, start++) {
    out[i] = passOrder(subset, seed, stream, Math.floor(start / n))[start % n]!;
  }
  return out;
}

// The last pass order computed for each (subset, seed, stream): batches walk through a pass in
// order, so one cached permutation per stream avoids rebuilding it for every batch.
const orders = new WeakMap<Subset, Map<string, Uint32Array>>();
function passOrder(subset: Subset, seed: number, stream: string, pass: number): Uint32Array {
  let cache = orders.get(subset);
  if (!cache) {
    cache = new Map();
    orders.set(subset, cache);
  }
  const key = `${seed}/${stream}`;
  const tagged = cache.get(key) as (Uint32Array & { pass?: number }) | undefined;
  if (tagged && tagged.pass === pass) return tagged;
  const order = epochOrder(subset, seed, stream, pass) as Uint32Array & { pass?: number };
  order.pass = pass;
  cache.set(key, order);
  return order;
}

/** What a run trained on, as its checkpoint records it: the shape and a hash of every byte. */
export interface DataFingerprint {
  count: number;
  /** Present when not 1 (checkpoints of grey data predate it). */
  channels?: number;
  rows: number;
  cols: number;
  /** 64 bits (two FNV-1a lanes) over the labels, then the pixels, in hex. */
  hash: string;
}

export function fingerprint(set: ImageSet): DataFingerprint {
  // Two 32-bit FNV-1a lanes with different offsets and primes: cheap (a 60k MNIST in about
  // 0.1 s) and enough to tell two datasets apart; it is no defence against a forged one.
  let a = 0x811c9dc5;
  let b = 0xcbf29ce4;
  const pixels = new Uint8Array(set.images.buffer, set.images.byteOffset, set.images.byteLength);
  for (const bytes of [set.labels, pixels]) {
    for (let i = 0; i < bytes.length; i++) {
      a = Math.imul(a ^ bytes[i]!, 0x01000193);
      b = Math.imul(b ^ bytes[i]!, 0x0100019d);
    }
  }
  const hex = (v: number) => (v >>> 0).toString(16).padStart(8, '0');
  const channels = (set.channels ?? 1) === 1 ? {} : { channels: set.channels };
  return { count: set.count, ...channels, rows: set.rows, cols: set.cols, hash: hex(a) + hex(b) };
}

export function describeFingerprint(f: DataFingerprint): string {
  return `${f.count} images of ${f.channels ? `${f.channels}x` : ''}${f.rows}x${f.cols}, hash ${f.hash}`;
}
