// The implementations that the golden suite holds to the same cases. Each provides `step` (the
// `inspect` contract: one step on given weights with injected d and masks) and/or `op` (single
// layers and losses, for the `op` cases).

import { inspect } from '@vat/core';

import { inspectReference, type OpName, runReferenceOp } from '../src/index.js';

import { runNaiveOp } from './naive.js';

export interface Arr {
  data: Float32Array;
  shape: number[];
}

export interface StepOutputs {
  logits: Float32Array;
  loss: number;
  ce: number;
  lds: number;
  entropy: number;
  rAdv: Float32Array;
  grads: Float32Array;
  updated: Float32Array;
}

export interface StepInput {
  weights: Float32Array;
  x: Float32Array;
  y: Uint32Array;
  xUnlabeled?: Float32Array;
  d?: Float32Array;
  masksLabeled?: Float32Array;
  masksUnlabeled?: Float32Array;
  lr: number;
}

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

/** The Node suite (parity.test.ts). */
export const IMPLEMENTATIONS: Implementation[] = [
  tfjsReference('tfjs-reference'),
  { name: 'burn-cpu', step: (o, i) => inspect('cpu', o, i) },
  // WebGPU in Node through the `webgpu` package; on machines without a GPU, SwiftShader.
  burnWebGpu('burn-webgpu'),
  { name: 'naive-f64', op: async (op, i) => runNaiveOp(op, i) },
];

/**
 * The browser suite (parity.browser.test.ts, headless Chromium): the same tfjs reference and
 * burn's WebGPU backend on the browser's own navigator.gpu (SwiftShader without a GPU).
 */
export const BROWSER_IMPLEMENTATIONS: Implementation[] = [tfjsReference('tfjs-reference-chromium'), burnWebGpu('burn-webgpu-chromium')];
