// The implementations that the golden suite holds to the same cases. Each provides `step` (the
// `inspect` contract: one step on given weights with injected d and masks) and/or `op` (single
// layers and losses, for the `op` cases).

import { type InspectInput, type Inspection, inspect } from '@vat/core';

import { inspectReference, type OpName, runReferenceOp } from '../src/index.js';

import { runNaiveOp } from './naive.js';

export interface Arr {
  data: Float32Array;
  shape: number[];
}

/** What a step gives back: @vat/core's `inspect` output. */
export type StepOutputs = Inspection;

/** What a step takes: @vat/core's `inspect` input (the reference's own type mirrors it field for field). */
export type StepInput = InspectInput;

export interface Implementation {
  name: string;
  step?: (options: Record<string, unknown>, input: StepInput) => Promise<StepOutputs>;
  op?: (op: string, inputs: Record<string, Arr>) => Promise<Record<string, Arr>>;
}

const tfjsReference = (name: string): Implementation => ({
  name,
  step: (o, i) => inspectReference(o, i),
  op: (op, i) => runReferenceOp(op as OpName, i),
});
const burnWebGpu = (name: string): Implementation => ({ name, step: (o, i) => inspect('webgpu', o, i) });
/** The crate's CPU kernels in one engine on one thread count. */
const vatCpu = (name: string, engine: 'native' | 'wasm', threads: number): Implementation => ({
  name,
  step: (o, i) => inspect('cpu', { ...o, engine, threads }, i),
});

/**
 * Thread counts for the native engine: 1, 2 and every core. The kernels' results do not depend
 * on the count (fixed chunks, partial sums in order), which these cases check with the same
 * tolerances as everything else and crates/vat-core's tests check bit for bit.
 */
export function threadCounts(cores: number): number[] {
  return [...new Set([1, 2, cores])].sort((a, b) => a - b);
}

/** The Node suite (parity.test.ts). */
export function nodeImplementations(cores: number): Implementation[] {
  return [
    tfjsReference('tfjs-reference'),
    ...threadCounts(cores).map((t) => vatCpu(`vat-cpu-native-${t}t`, 'native', t)),
    vatCpu('vat-cpu-wasm', 'wasm', 1),
    // burn-flex running the burn graph in wasm: the other CPU implementation in the crate.
    { name: 'burn-cpu', step: (o, i) => inspect('burn-cpu', o, i) },
    // WebGPU in Node through the `webgpu` package; on machines without a GPU, SwiftShader.
    burnWebGpu('burn-webgpu'),
    { name: 'naive-f64', op: async (op, i) => runNaiveOp(op, i) },
  ];
}

/** The CPU kernels in the threaded wasm module, in a worker of this (cross-origin isolated) page. */
function vatCpuThreaded(name: string, threads: number): Implementation {
  let worker: Worker | undefined;
  let next = 0;
  const pending = new Map<number, { resolve: (r: StepOutputs) => void; reject: (e: Error) => void }>();
  return {
    name,
    step: (options, input) => {
      if (!worker) {
        worker = new Worker(new URL('./parity-worker.ts', import.meta.url), { type: 'module' });
        worker.onmessage = (e: MessageEvent<{ id: number; result?: StepOutputs; error?: string }>) => {
          const p = pending.get(e.data.id)!;
          pending.delete(e.data.id);
          if (e.data.result) p.resolve(e.data.result);
          else p.reject(new Error(e.data.error));
        };
      }
      const id = next++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker!.postMessage({ id, options: { ...options, threads }, input });
      });
    },
  };
}

/**
 * The browser suite (parity.browser.test.ts, headless Chromium): the same tfjs reference,
 * burn's WebGPU backend on the browser's own navigator.gpu (SwiftShader without a GPU), and the
 * CPU kernels in the page's wasm module on one thread and in the threaded module (a worker) on
 * 2 and every core.
 */
export function browserImplementations(cores: number): Implementation[] {
  return [
    tfjsReference('tfjs-reference-chromium'),
    burnWebGpu('burn-webgpu-chromium'),
    vatCpu('vat-cpu-wasm-chromium', 'wasm', 1),
    ...threadCounts(cores)
      .filter((t) => t > 1)
      .map((t) => vatCpuThreaded(`vat-cpu-wasm-threads-chromium-${t}t`, t)),
  ];
}
