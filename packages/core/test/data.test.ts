import { describe, expect, it } from 'vitest';

import { InvalidConfigError, Rng, all, balancedSubset, epochOrder, gather, streamBatch, trainValSplit, type ImageSet } from '../src/index.node.js';

function fakeSet(n: number): ImageSet {
  const images = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) images.fill(i % 256, i * 4, i * 4 + 4);
  return { images, labels: Uint8Array.from({ length: n }, (_, i) => i % 10), count: n, rows: 2, cols: 2 };
}

describe('data handling', () => {
  it('shuffles reproducibly from the seed', () => {
    expect(Array.from(new Rng(5).permutation(20))).toEqual(Array.from(new Rng(5).permutation(20)));
    expect(Array.from(new Rng(5).permutation(20))).not.toEqual(Array.from(new Rng(6).permutation(20)));
    const s = all(fakeSet(100));
    expect(Array.from(epochOrder(s, 1, 'labeled', 0))).not.toEqual(Array.from(epochOrder(s, 1, 'labeled', 1)));
    expect(Array.from(epochOrder(s, 1, 'labeled', 0)).sort((a, b) => a - b)).toEqual(Array.from(s.indices));
  });

  it('splits train and validation without overlap', () => {
    const { train, val } = trainValSplit(fakeSet(100), 3, 20, 50);
    expect(val.indices.length).toBe(20);
    expect(train.indices.length).toBe(50);
    const v = new Set(val.indices);
    expect(Array.from(train.indices).some((i) => v.has(i))).toBe(false);
    expect(() => trainValSplit(fakeSet(100), 3, 20, 81)).toThrow(InvalidConfigError);
  });

  it('balanced_subset_has_equal_classes', () => {
    const sub = balancedSubset(all(fakeSet(1000)), 100, 7);
    const counts = new Array(10).fill(0);
    for (const i of sub.indices) counts[sub.set.labels[i]!]++;
    expect(counts).toEqual(new Array(10).fill(10));
    expect(balancedSubset(all(fakeSet(1000)), 100, 7).indices).toEqual(sub.indices);
    const odd = balancedSubset(all(fakeSet(1000)), 15, 7);
    const c2 = new Array(10).fill(0);
    for (const i of odd.indices) c2[odd.set.labels[i]!]++;
    expect(Math.max(...c2) - Math.min(...c2)).toBeLessThanOrEqual(1);
  });

  it('labeled stream wraps into a new pass over a small set', () => {
    const sub = balancedSubset(all(fakeSet(1000)), 10, 1);
    const b0 = streamBatch(sub, 1, 'labeled', 8, 0);
    const b1 = streamBatch(sub, 1, 'labeled', 8, 1);
    const seen = [...b0, ...b1.subarray(0, 2)].sort((a, b) => a - b);
    expect(seen).toEqual(Array.from(sub.indices));
  });

  it('gathers pixels scaled to [0, 1]', () => {
    const { x, y } = gather(fakeSet(300), [255, 3]);
    expect(x).toEqual(Float32Array.from([1, 1, 1, 1, 3 / 255, 3 / 255, 3 / 255, 3 / 255]));
    expect(Array.from(y)).toEqual([5, 3]);
  });
});
