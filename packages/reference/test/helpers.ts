// Small test utilities: seeded data, safetensors in and out, and a port of the burn core's
// SplitMix64 so the reference can be fed the very directions d that a burn Trainer draws.

import { concatFloat32 } from '../src/model.js';

/** mulberry32: seeded uniforms in [0, 1) for test data. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MASK = (1n << 64n) - 1n;

/**
 * crates/vat-core/src/rng.rs, step for step: SplitMix64, uniforms from the top 53 bits, one
 * Box-Muller normal per two uniforms (cosine branch), cast to float32. JS's Math.log and Math.cos
 * may differ from Rust's in the last bit of a float64, which the cast to float32 almost always
 * hides; the first step's LDS in the training test would show a mismatch.
 */
export class SplitMix64 {
  constructor(private state: bigint) {}

  nextU64(): bigint {
    this.state = (this.state + 0x9e3779b97f4a7c15n) & MASK;
    let z = this.state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
    return z ^ (z >> 31n);
  }

  uniform(): number {
    return Number(this.nextU64() >> 11n) * 2 ** -53;
  }

  normals(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const u1 = 1 - this.uniform();
      const u2 = this.uniform();
      out[i] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    }
    return out;
  }
}

const PARAM_NAMES = ['conv1.weight', 'conv1.bias', 'conv2.weight', 'conv2.bias', 'fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias'];

/** A safetensors weights file (README, "The weights file") from the flat concatenation. */
export function weightsToSafetensors(flat: Float32Array, shapes: number[][]): Uint8Array {
  const header: Record<string, unknown> = {};
  let offset = 0;
  shapes.forEach((shape, i) => {
    const bytes = 4 * shape.reduce((a, b) => a * b, 1);
    header[PARAM_NAMES[i]!] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  });
  let json = JSON.stringify(header);
  while (json.length % 8 !== 0) json += ' ';
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  const data = new DataView(out.buffer, 8 + head.length);
  flat.forEach((v, i) => {
    data.setFloat32(4 * i, v, true);
  });
  return out;
}

export interface Safetensors {
  metadata: Record<string, string>;
  tensor(name: string): Float32Array;
}

export function readSafetensors(bytes: Uint8Array): Safetensors {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  return {
    metadata: header.__metadata__ ?? {},
    tensor(name) {
      const [a, b] = header[name].data_offsets as [number, number];
      const out = new Float32Array((b - a) / 4);
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(8 + n + a + 4 * i, true);
      return out;
    },
  };
}

/** The eight parameters of a safetensors file, concatenated in PARAM_NAMES order. */
export function flatWeights(st: Safetensors): Float32Array {
  const parts = PARAM_NAMES.map((k) => st.tensor(k));
  return concatFloat32(parts);
}
