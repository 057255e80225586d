// The data formats people already have: Kaggle-layout CSV, NumPy .npy/.npz, decoded images, and
// the held-out test split. Every bad file must give an InvalidInputError naming where it is bad.
import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';

import {
  InvalidConfigError,
  InvalidInputError,
  checkSameScale,
  gather,
  holdOut,
  imageSetFromArrays,
  imageSetFromImages,
  parseCsv,
  parseNpy,
  parseNpz,
  parseShape,
} from '../src/index.node.js';
import { npy } from './npy.js';

const expectInput = (f: () => unknown, message: RegExp) => {
  expect(f).toThrow(InvalidInputError);
  expect(f).toThrow(message);
};

describe('CSV in the Kaggle layout', () => {
  it('reads labels and pixels with or without a header, as bytes when the pixels are 0..255', () => {
    const rows = ['3,0,255,10,20', '1,1,2,3,4'];
    for (const text of [rows.join('\n'), `${['label,pixel0,pixel1,pixel2,pixel3', ...rows].join('\r\n')}\r\n`]) {
      const set = parseCsv(text, { name: 'train.csv' });
      expect(set).toMatchObject({ count: 2, rows: 2, cols: 2, channels: 1 });
      expect(set.images).toBeInstanceOf(Uint8Array);
      expect(Array.from(set.images)).toEqual([0, 255, 10, 20, 1, 2, 3, 4]);
      expect(Array.from(set.labels)).toEqual([3, 1]);
    }
  });

  it('keeps other pixels as float32, and takes a colour shape when it is given', () => {
    const set = parseCsv('0,0.5,1,1.5\n1,2,3,4', { name: 'f.csv', shape: parseShape('3x1x1') });
    expect(set).toMatchObject({ channels: 3, rows: 1, cols: 1, count: 2 });
    expect(set.images).toBeInstanceOf(Float32Array);
    expect(Array.from(set.images.subarray(0, 3))).toEqual([0.5, 1, 1.5]);
  });

  it('keeps data already scaled to [0, 1] as it is, divides 0..255 data by 255, and refuses other values', () => {
    const scaled = parseCsv('0,0,0.25,0.5,1\n1,1,0,0,0', { name: 's.csv' });
    expect(scaled.pixelScale).toBe(1);
    expect(Array.from(gather(scaled, [0]).x)).toEqual([0, 0.25, 0.5, 1]);
    const bytes = parseCsv('0,0,51,102,255', { name: 'b.csv' });
    expect(bytes.pixelScale).toBe(255);
    expect(Array.from(gather(bytes, [0]).x)).toEqual([0, 51 / 255, 102 / 255, 1].map(Math.fround));
    expectInput(() => parseCsv('0,1,2,3,4\n1,1,-2,3,4', { name: 'n.csv' }), /n\.csv, line 2, column 3: pixel value -2 is outside 0\.\.255/);
    expectInput(() => parseCsv('0,1,2,3,300', { name: 'o.csv' }), /o\.csv, line 1, column 5: pixel value 300/);
    expect(() => checkSameScale(bytes, scaled, 'd')).toThrow(/training pixels go up to 255 but the test pixels lie in \[0, 1\]/);
    // An empty cell in the first row is an error there, not a header to skip.
    expectInput(() => parseCsv('1,2,,4,5\n1,2,3,4,5', { name: 'e.csv' }), /e\.csv, line 1, column 3: '' is not a number/);
  });

  it('names the line and column of a ragged row, a cell that is not a number, and a label out of range', () => {
    expectInput(() => parseCsv('1,2,3,4,5\n1,2,3', { name: 'a.csv' }), /a\.csv, line 2: 3 columns, but line 1 has 5/);
    expectInput(() => parseCsv('label,a,b,c,d\n1,2,3,4,5\n1,2,x,4,5', { name: 'b.csv' }), /b\.csv, line 3, column 3: 'x' is not a number/);
    expectInput(() => parseCsv('1,2,3,4,5\n1.5,2,3,4,5', { name: 'c.csv' }), /c\.csv, line 2: label 1\.5 is not a class index/);
    expectInput(() => parseCsv('1,2,3,4,5\n12,2,3,4,5', { name: 'd.csv', classes: 10 }), /d\.csv, line 2: label 12 is not a class index in 0\.\.9/);
    expectInput(() => parseCsv('label,p\n', { name: 'e.csv' }), /e\.csv holds no data rows/);
  });

  it('asks for the image shape when the pixels make no square grey image', () => {
    expectInput(
      () => parseCsv('1,2,3,4', { name: 'g.csv' }),
      /3 pixel values per example are not a square grey image; give the image shape \(--image-shape CxHxW\)/,
    );
    expectInput(() => parseCsv('1,2,3,4', { name: 'g.csv', shape: parseShape('2x2') }), /do not make images of 1x2x2/);
    expect(() => parseShape('28')).toThrow(/is not HxW or CxHxW/);
  });
});

describe('NumPy arrays', () => {
  it('reads the common dtypes, int64 labels among them', () => {
    const x = parseNpy(npy('|u1', [2, 2, 2], Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7])), 'x.npy');
    expect(x).toMatchObject({ dtype: '|u1', shape: [2, 2, 2] });
    const y = parseNpy(npy('<i8', [2], BigInt64Array.from([7n, 2n])), 'y.npy');
    expect(Array.from(y.data)).toEqual([7, 2]);
    const set = imageSetFromArrays(x, y, 'arrays');
    expect(set).toMatchObject({ count: 2, channels: 1, rows: 2, cols: 2 });
    expect(set.images).toBeInstanceOf(Uint8Array);
    expect(Array.from(set.labels)).toEqual([7, 2]);
    const f = parseNpy(npy('<f4', [3], Float32Array.from([0.25, 0.5, 1])), 'f.npy');
    expect(Array.from(f.data)).toEqual([0.25, 0.5, 1]);
  });

  it('refuses big-endian, Fortran-order, truncated and unsupported arrays, saying how to save them', () => {
    expectInput(() => parseNpy(npy('>f4', [1], new Uint8Array(4)), 'b.npy'), /big-endian .* a\.astype\('<f4'\)/);
    expectInput(() => parseNpy(npy('<f4', [1], new Uint8Array(4), true), 'f.npy'), /Fortran order/);
    expectInput(() => parseNpy(npy('<f4', [4], new Uint8Array(8)), 't.npy'), /needs 16 bytes of data, but the file holds 8/);
    expectInput(() => parseNpy(npy('<c8', [1], new Uint8Array(8)), 'c.npy'), /holds dtype <c8/);
    expectInput(() => parseNpy(new Uint8Array(20), 'z.npy'), /is not a \.npy file/);
  });

  it('reads a Keras-style .npz, turning channels-last colour images into channels first', () => {
    // Two 1x2 RGB images, channels last: pixel (r, g, b) values.
    const x = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const npz = zipSync({ 'x_train.npy': npy('|u1', [2, 1, 2, 3], x), 'y_train.npy': npy('|u1', [2], Uint8Array.from([0, 1])) });
    const arrays = parseNpz(npz, 'd.npz');
    expect(Object.keys(arrays).sort()).toEqual(['x_train', 'y_train']);
    const set = imageSetFromArrays(arrays.x_train!, arrays.y_train!, 'd.npz');
    expect(set).toMatchObject({ channels: 3, rows: 1, cols: 2 });
    // Image 0: R plane (1, 4), G plane (2, 5), B plane (3, 6).
    expect(Array.from(set.images.subarray(0, 6))).toEqual([1, 4, 2, 5, 3, 6]);
    expectInput(() => parseNpz(new Uint8Array([1, 2, 3]), 'bad.npz'), /bad\.npz is not a readable \.npz/);
  });

  it('refuses labels that do not match the images, or that are one-hot, and pixels that are not finite', () => {
    const x = parseNpy(npy('<f4', [2, 4], Float32Array.from([0, 1, 2, 3, 4, 5, 6, Number.NaN])), 'x');
    const y2 = parseNpy(npy('|u1', [2, 2], Uint8Array.from([1, 0, 0, 1])), 'y');
    expectInput(() => imageSetFromArrays(x, y2, 'one-hot'), /save y\.argmax\(1\)/);
    const y = parseNpy(npy('|u1', [2], Uint8Array.from([1, 0])), 'y');
    expectInput(() => imageSetFromArrays(x, y, 'nan'), /image 1 holds NaN/);
  });
});

describe('decoded images', () => {
  const grey = (file: string, label: number, w = 2, h = 2, v = 9) => ({
    file,
    label,
    width: w,
    height: h,
    channels: 4 as const,
    data: new Uint8Array(w * h * 4).fill(v),
  });

  it('keeps grey images stored as RGBA as one channel, and colour ones as three', () => {
    const set = imageSetFromImages([grey('a.png', 0), grey('b.png', 1)], 'folder');
    expect(set).toMatchObject({ channels: 1, rows: 2, cols: 2, count: 2 });
    expect(Array.from(set.images)).toEqual(new Array(8).fill(9));
    const red = { ...grey('r.png', 1), data: Uint8Array.from([255, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]) };
    const colour = imageSetFromImages([grey('a.png', 0), red], 'folder');
    expect(colour.channels).toBe(3);
    // Image 1's red plane first.
    expect(Array.from(colour.images.subarray(12, 16))).toEqual([255, 0, 0, 0]);
  });

  it('names an image whose size differs from the others', () => {
    expectInput(() => imageSetFromImages([grey('a.png', 0), grey('cat/b.png', 1, 3, 2)], 'folder'), /cat\/b\.png is 3x2 pixels, but a\.png is 2x2/);
    expectInput(() => imageSetFromImages([], 'empty'), /empty holds no images/);
  });
});

describe('a held-out test set', () => {
  it('holds out the same examples in every run, and none of them is trained on', () => {
    const set = parseCsv(Array.from({ length: 50 }, (_, i) => `${i % 3},${i},0,0,0`).join('\n'), { name: 's.csv' });
    const a = holdOut(set, 10);
    const b = holdOut(set, 10);
    expect(Array.from(a.test.images)).toEqual(Array.from(b.test.images));
    expect(a.test.count + a.train.count).toBe(50);
    const firstPixel = (s: typeof set) => Array.from({ length: s.count }, (_, i) => s.images[i * 4]);
    const ids = new Set(firstPixel(a.train));
    expect(firstPixel(a.test).filter((v) => ids.has(v))).toEqual([]);
    expect(() => holdOut(set, 50)).toThrow(InvalidConfigError);
  });
});
