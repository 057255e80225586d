// Data sets read from disk in each format readDataset knows, and the message each bad one gets.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { zipSync } from 'fflate';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';

import { InvalidInputError, parseShape } from '../src/index.node.js';
import { readDataset, readImageFolder } from '../src/node.js';
import { npy } from './npy.js';

const temp = () => mkdtempSync(path.join(tmpdir(), 'vat-data-'));

/** A w x h PNG, grey value `v` (stored RGBA, as most tools write them), or colour when `rgb`. */
function png(w: number, h: number, v: number, rgb?: [number, number, number]): Buffer {
  const p = new PNG({ width: w, height: h });
  for (let i = 0; i < w * h; i++) p.data.set([...(rgb ?? [v, v, v]), 255], i * 4);
  return PNG.sync.write(p);
}

function folder(root: string, classes: Record<string, Buffer[]>, ext = 'png'): void {
  for (const [name, files] of Object.entries(classes)) {
    mkdirSync(path.join(root, name), { recursive: true });
    for (const [i, b] of files.entries()) writeFileSync(path.join(root, name, `${i}.${ext}`), b);
  }
}

async function refused(p: Promise<unknown>, message: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InvalidInputError);
  expect((err as Error).message).toMatch(message);
}

describe('readDataset', () => {
  it('reads an image folder of PNG and JPEG files, classes in the order of their names', async () => {
    const dir = temp();
    folder(dir, { cat: [png(4, 4, 10), png(4, 4, 20)], dog: [png(4, 4, 200)] });
    const j = jpeg.encode({ width: 4, height: 4, data: Buffer.alloc(64, 128) }, 95);
    writeFileSync(path.join(dir, 'dog', 'x.jpg'), j.data);
    writeFileSync(path.join(dir, 'dog', 'notes.txt'), 'not an image');
    const d = await readDataset(dir);
    expect(d).toMatchObject({ format: 'image-folder', classNames: ['cat', 'dog'], test: undefined });
    expect(d.train).toMatchObject({ count: 4, channels: 1, rows: 4, cols: 4 });
    expect(Array.from(d.train.labels)).toEqual([0, 0, 1, 1]);
    expect(d.train.images[0]).toBe(10);
    // JPEG is lossy: near 128, not exactly.
    expect(Math.abs(d.train.images[3 * 16]! - 128)).toBeLessThan(4);
  });

  it('reads colour images as three channels, and train/ and test/ folders as the two sets', async () => {
    const dir = temp();
    folder(path.join(dir, 'train'), { a: [png(3, 3, 0, [255, 0, 0])], b: [png(3, 3, 0, [0, 0, 255])] });
    folder(path.join(dir, 'test'), { a: [png(3, 3, 0, [250, 5, 0])], b: [png(3, 3, 9)] });
    const d = await readDataset(dir);
    expect(d.train).toMatchObject({ channels: 3, rows: 3, cols: 3, count: 2 });
    expect(d.test).toMatchObject({ channels: 3, count: 2 });
    const other = temp();
    folder(path.join(other, 'train'), { a: [png(3, 3, 1)], b: [png(3, 3, 2)] });
    folder(path.join(other, 'test'), { a: [png(3, 3, 1)], c: [png(3, 3, 2)] });
    await refused(readDataset(other), /has the classes a, c, but the training folder has a, b/);
  });

  it('names a class folder without images, an unreadable image, and an image of another size', async () => {
    const empty = temp();
    folder(empty, { a: [png(2, 2, 1)] });
    mkdirSync(path.join(empty, 'b'));
    await refused(readImageFolder(empty), /class folder '.*\/b' holds no PNG or JPEG images/);
    const broken = temp();
    folder(broken, { a: [png(2, 2, 1)], b: [Buffer.from('this is not a png')] });
    await refused(readDataset(broken), /b\/0\.png is not a readable PNG image/);
    const sizes = temp();
    folder(sizes, { a: [png(2, 2, 1)], b: [png(3, 2, 1)] });
    await refused(readDataset(sizes), /b\/0\.png is 3x2 pixels, but .*a\/0\.png is 2x2/);
    await refused(readDataset(temp()), /has no class subfolders/);
  });

  it('reads a CSV with a separate test CSV, and a .npz or a directory of .npy arrays', async () => {
    const dir = temp();
    writeFileSync(path.join(dir, 'train.csv'), 'label,p0,p1,p2,p3\n1,0,1,2,3\n0,4,5,6,7\n');
    writeFileSync(path.join(dir, 'test.csv'), '2,9,9,9,9\n');
    const csv = await readDataset(path.join(dir, 'train.csv'), { testSource: path.join(dir, 'test.csv') });
    expect(csv).toMatchObject({ format: 'csv', train: { count: 2, rows: 2 }, test: { count: 1 } });
    const x = npy('|u1', [2, 2, 2], Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
    const y = npy('<i8', [2], BigInt64Array.from([0n, 1n]));
    writeFileSync(path.join(dir, 'd.npz'), zipSync({ 'x.npy': x, 'y.npy': y }));
    expect(await readDataset(path.join(dir, 'd.npz'))).toMatchObject({ format: 'npz', train: { count: 2, rows: 2, cols: 2 } });
    const arrays = path.join(dir, 'arrays');
    mkdirSync(arrays);
    writeFileSync(path.join(arrays, 'x_train.npy'), npy('|u1', [2, 4], Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8])));
    writeFileSync(path.join(arrays, 'y_train.npy'), npy('|u1', [2], Uint8Array.from([1, 1])));
    expect(await readDataset(arrays, { shape: parseShape('1x2x2') })).toMatchObject({ format: 'npy', train: { count: 2, rows: 2 } });
    writeFileSync(path.join(dir, 'e.npz'), zipSync({ 'images.npy': x }));
    await refused(readDataset(path.join(dir, 'e.npz')), /holds the arrays images; name them x_train, y_train/);
    writeFileSync(path.join(dir, 'data.parquet'), 'x');
    await refused(readDataset(path.join(dir, 'data.parquet')), /cannot tell the format/);
    await refused(readDataset(path.join(dir, 'missing.csv')), /does not exist/);
  });
});
