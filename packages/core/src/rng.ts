// A small seeded generator for data order and subsets. Its whole state is one 32-bit word, so
// a run can record it; the model's own draws (init, dropout, d) come from the wasm core's RNG.

/** mulberry32 (T. Ettinger): 32-bit state, good enough for shuffling. */
export class Rng {
  constructor(private state: number) {
    this.state = state >>> 0;
  }

  /** A generator for one purpose within a run, e.g. `Rng.derive(seed, 'epoch', 3)`. */
  static derive(seed: number, ...parts: (string | number)[]): Rng {
    let h = (seed >>> 0) ^ 0x9e3779b9;
    for (const p of parts.join('/')) {
      h = Math.imul(h ^ p.charCodeAt(0), 0x85ebca6b);
      h ^= h >>> 13;
    }
    return new Rng(h >>> 0);
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Fisher-Yates, in place. */
  shuffle<T extends { length: number; [i: number]: number }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
    return a;
  }

  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }
}
