import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { InvalidInputError, parseIdx, parseImageSet } from '../src/index.node.js';
import { bundledMnistDir, loadMnist } from '../src/node.js';

function idx(magic: number, dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, magic, false);
  dims.forEach((d, i) => {
    v.setUint32(4 + 4 * i, d, false);
  });
  out.set(data, 4 + 4 * dims.length);
  return out;
}
const images = (n: number, s = 4) => idx(2051, [n, s, s], new Uint8Array(n * s * s).fill(7));
const labels = (values: number[]) => idx(2049, [values.length], Uint8Array.from(values));

describe('idx reader', () => {
  it('reads a well-formed pair', () => {
    const set = parseImageSet(images(3), labels([0, 1, 9]));
    expect(set).toMatchObject({ count: 3, rows: 4, cols: 4 });
    expect(Array.from(set.labels)).toEqual([0, 1, 9]);
  });

  it('names a gzipped, a float and an empty file as such, not by their magic number', () => {
    const gz = Uint8Array.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
    expect(() => parseImageSet(gz, labels([1]))).toThrow(/images is gzip-compressed/);
    const float = images(1);
    float[2] = 0x0d;
    expect(() => parseImageSet(float, labels([1]))).toThrow(/element type 0xd; only unsigned bytes/);
    expect(() => parseImageSet(new Uint8Array(0), labels([1]))).toThrow(/images is 0 bytes long/);
    expect(() => parseImageSet(images(1), new Uint8Array(0))).toThrow(/labels is 0 bytes long/);
  });

  it('reads gzipped idx files from disk', async () => {
    const { gzipSync } = await import('node:zlib');
    const { readImageSet } = await import('../src/node.js');
    const dir = await fs.mkdtemp(path.join((await import('node:os')).tmpdir(), 'vat-idx-'));
    await fs.writeFile(path.join(dir, 'i.gz'), gzipSync(images(3)));
    await fs.writeFile(path.join(dir, 'l'), labels([0, 1, 2]));
    expect(await readImageSet(path.join(dir, 'i.gz'), path.join(dir, 'l'))).toMatchObject({ count: 3, rows: 4 });
    await fs.writeFile(path.join(dir, 'bad.gz'), Uint8Array.from([0x1f, 0x8b, 1, 2, 3]));
    await expect(readImageSet(path.join(dir, 'bad.gz'), path.join(dir, 'l'))).rejects.toThrow(/is gzip-compressed but does not inflate/);
  });

  it('rejects_images_file_with_wrong_magic', () => {
    expect(() => parseImageSet(labels([1, 2]), labels([1, 2]))).toThrow(InvalidInputError);
    expect(() => parseImageSet(labels([1, 2]), labels([1, 2]))).toThrow(/magic number 2049 is not 2051/);
  });

  it('rejects_labels_file_with_wrong_magic', () => {
    expect(() => parseImageSet(images(2), images(2))).toThrow(/magic number 2051 is not 2049/);
  });

  it('rejects_truncated_file', () => {
    const bytes = images(3).subarray(0, 40);
    expect(() => parseImageSet(bytes, labels([0, 1, 2]))).toThrow(/truncated or corrupt/);
    expect(() => parseIdx(new Uint8Array([0, 0, 8]))).toThrow(InvalidInputError);
  });

  it('rejects_trailing_bytes', () => {
    const bytes = new Uint8Array([...images(2), 1, 2, 3]);
    expect(() => parseImageSet(bytes, labels([0, 1]))).toThrow(/holds \d+; the file is truncated or corrupt/);
  });

  it('rejects_gzip_compressed_file', () => {
    expect(() => parseIdx(new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]))).toThrow(/gzip/);
  });

  it('rejects_unsupported_element_type', () => {
    const bytes = images(1);
    bytes[2] = 0x0d; // float32
    expect(() => parseIdx(bytes)).toThrow(/element type 0xd/);
  });

  it('rejects_image_and_label_count_mismatch', () => {
    expect(() => parseImageSet(images(3), labels([0, 1]))).toThrow(/3 images but 2 labels/);
  });

  it('rejects_label_outside_the_classes', () => {
    expect(() => parseImageSet(images(2), labels([0, 10]))).toThrow(/label 10 at index 1/);
  });

  it('rejects_non_square_images', () => {
    expect(() => parseImageSet(idx(2051, [1, 2, 3], new Uint8Array(6)), labels([0]))).toThrow(/2x3/);
  });
});

describe('bundled MNIST', () => {
  it('is the original data set (checksums and counts)', async () => {
    // md5 sums of the original files, as recorded in docs/platform.md.
    const expected: Record<string, string> = {
      'train-images-idx3-ubyte': '6bbc9ace898e44ae57da46a324031adb',
      'train-labels-idx1-ubyte': 'a25bea736e30d166cdddb491f175f624',
      't10k-images-idx3-ubyte': '2646ac647ad5339dbf082846283269ea',
      't10k-labels-idx1-ubyte': '27ae3e4e09519cfbb04c329615203637',
    };
    for (const [file, md5] of Object.entries(expected)) {
      const bytes = await fs.readFile(path.join(bundledMnistDir(), file));
      expect(createHash('md5').update(bytes).digest('hex'), file).toBe(md5);
    }
    const { train, test } = await loadMnist();
    expect([train.count, test.count, train.rows, train.cols]).toEqual([60000, 10000, 28, 28]);
  });
});
