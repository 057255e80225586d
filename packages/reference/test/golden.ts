// Parses the language-neutral golden cases (test/golden/README.md describes the format) and
// compares outputs with them element by element. No Node APIs here: the browser suite uses this
// file too. Where the bytes come from is a `CaseSource` (golden-node.ts reads the files from disk,
// golden-browser.ts fetches them from the vite dev server).

interface ArrayRef {
  dtype: 'float32';
  offset: number;
  shape: number[];
}
interface LcgRef {
  generate: 'lcg32';
  seed: number;
  limits: number[];
  length: number;
}
export interface Tolerance {
  atol: number;
  rtol: number;
  reason: string;
}

export interface CaseJson {
  schema: 1;
  name: string;
  kind: 'step' | 'op';
  op?: string;
  description: string;
  /** Every option of the step; a spec case adds `modelSpec` (an object). */
  options?: Record<string, unknown>;
  shapes?: { batch: number; unlabeledBatch?: number; pooled?: number; params: number[][] };
  inputs: Record<string, ArrayRef | LcgRef | number[] | number>;
  expected: Record<string, ArrayRef | number>;
  tolerances: Record<string, Tolerance>;
  notCompared?: Record<string, string>;
  data: string;
}

export type Value = Float32Array | number;

export interface GoldenCase {
  name: string;
  kind: 'step' | 'op';
  op?: string;
  description: string;
  options: Record<string, unknown>;
  /** Float32Array for arrays, number[] for labels, number for scalars such as lr. */
  inputs: Record<string, Float32Array | number[] | number>;
  shapes: Record<string, number[]>;
  expected: Record<string, Value>;
  tolerances: Record<string, Tolerance>;
  notCompared: Record<string, string>;
}

function isRef(v: unknown): v is ArrayRef {
  return typeof v === 'object' && v !== null && 'offset' in v;
}

/** The rule in test/golden/README.md ("Generated weights"); shapes from the case's `shapes.params`. */
export function lcgWeights(spec: LcgRef, params: number[][]): Float32Array {
  const out = new Float32Array(spec.length);
  let state = spec.seed >>> 0;
  let at = 0;
  params.forEach((shape, i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    for (let k = 0; k < n; k++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      out[at++] = (((state >>> 8) / 16777216) * 2 - 1) * spec.limits[i]!;
    }
  });
  if (at !== spec.length) throw new Error(`generated ${at} weights, the case says ${spec.length}`);
  return out;
}

/** Where the suite gets its cases: the Node suite reads files, the browser suite fetches them. */
export interface CaseSource {
  /** Shown in messages: a directory, or a URL prefix. */
  where: string;
  /** The case names present (file names without `.json`), sorted. */
  list(): Promise<string[]>;
  /** Reads and parses one case. Rejects if its files are missing or malformed. */
  load(name: string): Promise<GoldenCase>;
}

/** Builds a case from its JSON (already parsed) and the bytes of its `.bin` file. */
export function parseCase(name: string, json: CaseJson, bin: Uint8Array): GoldenCase {
  if (json.schema !== 1) throw new Error(`${name}: unknown schema ${json.schema}`);
  if (json.name !== name) throw new Error(`${name}.json names itself '${json.name}'`);
  const view = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
  const shapes: Record<string, number[]> = {};
  const read = (key: string, r: ArrayRef): Float32Array => {
    const n = r.shape.reduce((a, b) => a * b, 1);
    if (r.dtype !== 'float32' || r.offset + 4 * n > bin.byteLength) throw new Error(`${name}: bad descriptor for ${key}`);
    shapes[key] = r.shape;
    // Copy out: the file's bytes are little-endian float32 and the offset need not be aligned.
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(r.offset + 4 * i, true);
    return out;
  };
  const inputs: GoldenCase['inputs'] = {};
  for (const [k, v] of Object.entries(json.inputs)) {
    if (isRef(v)) inputs[k] = read(k, v);
    else if (typeof v === 'object' && v !== null && 'generate' in v) inputs[k] = lcgWeights(v, json.shapes!.params);
    else inputs[k] = v as number[] | number;
  }
  const expected: GoldenCase['expected'] = {};
  for (const [k, v] of Object.entries(json.expected)) expected[k] = isRef(v) ? read(`expected.${k}`, v) : v;
  for (const k of Object.keys(expected)) {
    if (!json.tolerances[k]) throw new Error(`${name}: expected.${k} has no tolerance`);
  }
  return {
    name,
    kind: json.kind,
    op: json.op,
    description: json.description,
    options: json.options ?? {},
    inputs,
    shapes,
    expected,
    tolerances: json.tolerances,
    notCompared: json.notCompared ?? {},
  };
}

export interface Deviation {
  field: string;
  /** Elements outside the tolerance. */
  failures: number;
  count: number;
  maxAbs: number;
  /** Largest |a - e| / (atol + rtol |e|): <= 1 passes. */
  worstRatio: number;
  worstIndex: number;
  worstActual: number;
  worstExpected: number;
}

/** Whole-array comparison: every element must satisfy |a - e| <= atol + rtol * |e|. */
export function compare(field: string, actual: Value | undefined, expected: Value, tol: Tolerance): Deviation {
  const a = typeof actual === 'number' ? [actual] : actual;
  const e = typeof expected === 'number' ? [expected] : expected;
  const dev: Deviation = { field, failures: 0, count: e.length, maxAbs: 0, worstRatio: 0, worstIndex: -1, worstActual: NaN, worstExpected: NaN };
  if (!a || a.length !== e.length) {
    dev.failures = e.length || 1;
    dev.worstRatio = Infinity;
    dev.worstActual = a ? a.length : NaN;
    dev.worstExpected = e.length;
    return dev;
  }
  for (let i = 0; i < e.length; i++) {
    const diff = Math.abs(a[i]! - e[i]!);
    const ratio = Number.isNaN(diff) ? Infinity : diff / (tol.atol + tol.rtol * Math.abs(e[i]!));
    if (ratio > 1) dev.failures++;
    if (diff > dev.maxAbs || Number.isNaN(diff)) dev.maxAbs = Number.isNaN(diff) ? Infinity : diff;
    if (ratio > dev.worstRatio || dev.worstIndex < 0) {
      Object.assign(dev, { worstRatio: ratio, worstIndex: i, worstActual: a[i]!, worstExpected: e[i]! });
    }
  }
  return dev;
}

export function describeDeviation(d: Deviation, tol: Tolerance): string {
  if (d.worstRatio === Infinity && d.worstIndex < 0) {
    return `${d.field}: length ${d.worstActual}, expected ${d.worstExpected}`;
  }
  return (
    `${d.field}: ${d.failures} of ${d.count} elements outside atol ${tol.atol} + rtol ${tol.rtol} * |expected|; ` +
    `worst [${d.worstIndex}] got ${d.worstActual}, expected ${d.worstExpected} (${d.worstRatio.toFixed(2)}x the allowance); max |diff| ${d.maxAbs.toExponential(2)}`
  );
}
