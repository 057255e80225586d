// The bench's batches: the first `count` MNIST training images, as the core takes them.
import { loadMnist } from '@vat/core/node';

import type { BenchData } from './measure.js';

export async function benchData(count: number): Promise<BenchData> {
  const { train } = await loadMnist();
  const pixels = train.rows * train.cols;
  const n = Math.min(count, train.count);
  const x = new Float32Array(n * pixels);
  for (let i = 0; i < x.length; i++) x[i] = train.images[i]! / 255;
  const y = Uint32Array.from(train.labels.subarray(0, n));
  return { x, y, count: n, pixels };
}
