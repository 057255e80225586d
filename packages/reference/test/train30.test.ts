// Short-run parity: the tfjs reference's own stateful loop (ReferenceTrainer: optimiser state
// carried across steps) and the crate's Trainer, on every engine and thread count, train 30
// steps from the same weights on the same batches, with the same directions d and no dropout,
// and their loss curves must agree at every step.
//
// The burn Trainer draws d itself, from its SplitMix64 stream; inspect() would let us inject d but
// restarts the optimiser every call. So the weights go in through importWeights, the stream's
// state comes out of exportCheckpoint's metadata (rng_state), and the reference replays the same
// stream with the port in helpers.ts. Without dropout, d is the only draw per step
// (train.rs, draw_noise), shaped like the VAT batch.

import { availableParallelism } from 'node:os';

import { Trainer, type TrainerOptions } from '@vat/core';
import { describe, expect, it } from 'vitest';

import { concatFloat32, paramShapes, ReferenceTrainer, type ReferenceOptions } from '../src/index.js';

import { flatWeights, mulberry32, readSafetensors, SplitMix64, weightsToSafetensors } from './helpers.js';
import { threadCounts } from './implementations.js';

const STEPS = 30;
const TINY = { imageSize: 8, convFilters: 3, hidden: 5, classes: 4 };
const PX = TINY.imageSize * TINY.imageSize;

/**
 * Per-step tolerance on loss, ce, lds and entropy: |burn - reference| <= ATOL + RTOL * |reference|.
 * Both sides start within float32 rounding and each side's rounding then feeds back through the
 * optimiser state. Measured over the 30 steps: at most 2.4e-7 (Adam run, CPU and WebGPU) and
 * 4.8e-7 (Adadelta run, CPU), so 1e-5 leaves a 20x margin, while a wrong optimiser state, a stale
 * d or a different batch moves the loss by 1e-3 or more within a step or two.
 */
const ATOL = 1e-5;
const RTOL = 1e-5;
/**
 * Final weights after 30 steps, largest element gap. Measured: 1.8e-6 (Adam, the CPU kernels in the
 * native addon, whose gemm fuses multiply-adds), 9.5e-7 (the same kernels in wasm), 4.8e-7 (Adam,
 * burn-flex), 8.3e-7 (Adam, WebGPU), 6e-8 (Adadelta). 2e-5 keeps a 10x margin over the largest,
 * and is still 1e-4 of how far the weights move.
 */
const WEIGHTS_ATOL = 2e-5;

/** Every engine and thread count of the crate's trainers, by the suite's names. */
const TRAINERS: Record<string, TrainerOptions> = {
  ...Object.fromEntries(threadCounts(availableParallelism()).map((t) => [`vat-cpu-native-${t}t`, { backend: 'cpu', engine: 'native', threads: t }])),
  'vat-cpu-wasm': { backend: 'cpu', engine: 'wasm' },
  'burn-cpu': { backend: 'burn-cpu' },
  'burn-webgpu': { backend: 'webgpu' },
};
const CPU_TRAINERS = Object.keys(TRAINERS).filter((k) => k !== 'burn-webgpu');

interface Run {
  name: string;
  options: ReferenceOptions;
  lr: number;
  labeled: number;
  unlabeled?: number;
  /** Keys of TRAINERS. */
  trainers: string[];
  /** The loss must fall over the run (Adam at lr 0.01 does; Adadelta at lr 1 barely starts in 30 steps). */
  learns: boolean;
}

const RUNS: Run[] = [
  { name: 'supervised VAT with Adam', options: { ...TINY, optimizer: 'adam' }, lr: 0.01, labeled: 7, trainers: Object.keys(TRAINERS), learns: true },
  {
    name: 'semi-supervised VAT+EntMin with Adadelta',
    options: { ...TINY, optimizer: 'adadelta', entmin: true, powerIterations: 2 },
    lr: 1,
    labeled: 4,
    unlabeled: 7,
    trainers: CPU_TRAINERS,
    learns: false,
  },
];

/** Four noisy class templates, so the loss has something to learn and falls over 30 steps. */
function makeBatches(run: Run, seed: number) {
  const r = mulberry32(seed);
  const templates = Array.from({ length: TINY.classes }, () => Float32Array.from({ length: PX }, () => (r() < 0.4 ? 1 : 0)));
  const sample = (n: number) => {
    const y = Uint32Array.from({ length: n }, () => Math.floor(r() * TINY.classes));
    const x = new Float32Array(n * PX);
    y.forEach((label, s) => {
      for (let i = 0; i < PX; i++) x[s * PX + i] = Math.min(1, Math.max(0, 0.7 * templates[label]![i]! + 0.3 * r()));
    });
    return { x, y };
  };
  return Array.from({ length: STEPS }, () => ({ ...sample(run.labeled), xU: run.unlabeled ? sample(run.unlabeled).x : undefined }));
}

function glorotWeights(seed: number): Float32Array {
  const r = mulberry32(seed);
  const parts = paramShapes(TINY).map((shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    if (shape.length === 1) return Float32Array.from({ length: n }, () => (r() - 0.5) * 0.2);
    const field = shape.slice(2).reduce((a, b) => a * b, 1);
    const limit = Math.sqrt(6 / ((shape[1]! + shape[0]!) * field));
    return Float32Array.from({ length: n }, () => (r() * 2 - 1) * limit);
  });
  return concatFloat32(parts);
}

const FIELDS = ['loss', 'ce', 'lds', 'entropy'] as const;

describe("30 training steps: the crate's Trainer and the tfjs reference follow the same loss curve", () => {
  for (const run of RUNS) {
    for (const trainer of run.trainers) {
      it(`${run.name}, ${trainer}`, async () => {
        const weights = glorotWeights(7);
        const batches = makeBatches(run, 11);

        const burn = await Trainer.create({ ...run.options, ...TRAINERS[trainer], seed: 1 });
        await burn.importWeights(weightsToSafetensors(weights, paramShapes(TINY)));
        const checkpoint = readSafetensors(await burn.exportCheckpoint());
        expect(burn.step).toBe(0);
        expect(flatWeights(checkpoint)).toEqual(weights);
        const stream = new SplitMix64(BigInt(checkpoint.metadata.rng_state!));
        const ref = await ReferenceTrainer.create(run.options, weights);

        const rows: string[] = [];
        const bad: string[] = [];
        let worst = 0;
        const curves: { ref: number[]; burn: number[] } = { ref: [], burn: [] };
        try {
          for (const [s, b] of batches.entries()) {
            const d = stream.normals((run.unlabeled ?? run.labeled) * PX);
            const got = await burn.trainStep(b.x, b.y, run.lr, b.xU);
            const want = await ref.trainStep({ x: b.x, y: b.y, xUnlabeled: b.xU, d }, run.lr);
            curves.ref.push(want.loss);
            curves.burn.push(got.loss);
            for (const f of FIELDS) {
              const diff = Math.abs(got[f] - want[f]);
              worst = Math.max(worst, diff);
              if (diff > ATOL + RTOL * Math.abs(want[f])) bad.push(`step ${s + 1} ${f}: burn ${got[f]}, reference ${want[f]}`);
            }
            rows.push(`${String(s + 1).padStart(2)}  ${want.loss.toFixed(7)}  ${got.loss.toFixed(7)}  ${Math.abs(got.loss - want.loss).toExponential(1)}`);
          }
          console.log(
            `${run.name}, ${trainer}: largest |diff| over ${STEPS} steps ${worst.toExponential(2)}; loss ${curves.ref[0]!.toFixed(4)} -> ${curves.ref.at(-1)!.toFixed(4)}`,
          );
          expect(bad, `step  reference  burn  |diff|\n${rows.join('\n')}`).toEqual([]);

          const burnWeights = flatWeights(readSafetensors(await burn.exportWeights()));
          const refWeights = await ref.weights();
          let gap = 0;
          let moved = 0;
          refWeights.forEach((v, i) => {
            gap = Math.max(gap, Math.abs(v - burnWeights[i]!));
            moved = Math.max(moved, Math.abs(v - weights[i]!));
          });
          console.log(
            `  weights after ${STEPS} steps: largest |burn - reference| ${gap.toExponential(2)}, largest move from the start ${moved.toExponential(2)}`,
          );
          expect(gap, 'largest |diff| in the weights after 30 steps').toBeLessThan(WEIGHTS_ATOL);
          // The weights must have moved far beyond the tolerance, or agreement would be cheap.
          expect(moved).toBeGreaterThan(100 * WEIGHTS_ATOL);
          if (run.learns) expect(curves.ref.at(-1)!).toBeLessThan(curves.ref[0]! - 0.05);
          expect(ref.step).toBe(STEPS);
          expect(burn.step).toBe(STEPS);
        } finally {
          burn.dispose();
          ref.dispose();
        }
      });
    }
  }
});
