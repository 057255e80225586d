// The measuring loop, shared by the Node child processes (node-run.ts) and the browser page
// (page.ts). It runs in both, so it imports no Node module.
//
// One run = one implementation on one backend, plain or VAT, at one batch size: `warmup` steps
// that are timed but not counted (the first compiles shaders and fills caches), then measured
// steps until both `minSteps` steps and `minSeconds` seconds are done, or `maxSteps` steps.
// Each step is timed from the call to the moment its loss is back on the host, so queued GPU
// work cannot hide outside the measurement. (PyTorch's row is measured the same way by
// torch/seed_step.py, in Python.)
import { type ResolvedOptions, Rng, Trainer, resolveOptions } from '@vat/core';
import { ReferenceTrainer, concatFloat32, paramShapes } from '@vat/reference';

export type Impl = 'vat' | 'tfjs' | 'torch';

export interface RunSpec {
  /** Which implementation: the vat-core crate through @vat/core, the tfjs reference, or PyTorch. */
  impl: Impl;
  /** vat: 'cpu' | 'burn-cpu' | 'webgpu'. tfjs: 'webgpu' | 'webgl' (| 'cpu'). torch: 'cpu'. */
  backend: string;
  /** Where it runs: Node, Chromium's page, a worker of Chromium's (cross-origin isolated) page, or Python. */
  host: 'node' | 'chromium' | 'chromium-worker' | 'python';
  /** vat: the engine ('native' or 'wasm'; default auto). */
  engine?: 'native' | 'wasm';
  /** Threads of the CPU backend (vat) or of PyTorch. */
  threads?: number;
  vat: boolean;
  batch: number;
  warmup: number;
  minSteps: number;
  minSeconds: number;
  maxSteps: number;
  seed: number;
}

export interface RunResult {
  spec: RunSpec;
  /** burn: the adapter report of @vat/core; tfjs: backend name and, for WebGPU, the adapter. */
  adapter: string;
  warmupMs: number[];
  stepMs: number[];
  medianMs: number;
  meanMs: number;
  minMs: number;
  imgPerSec: number;
  /** Loss of the first and last step: both finite, or the run fails. */
  firstLoss: number;
  lastLoss: number;
}

/** The bench's data: `count` MNIST images (pixels in [0, 1]) and labels, cycled batch by batch. */
export interface BenchData {
  x: Float32Array;
  y: Uint32Array;
  count: number;
  pixels: number;
}

/** The seed experiment's settings: the `seed` preset, resolved by the core (Adadelta lr 1, eps 1, xi 10, Ip 1, no dropout). */
export async function seedOptions(): Promise<ResolvedOptions> {
  return resolveOptions({ dropout: false }, 'seed');
}

interface Stepper {
  adapter: string;
  step(x: Float32Array, y: Uint32Array): Promise<number>;
  dispose(): void;
}

/** Glorot-uniform weights and zero biases for the seed CNN, flat in PyTorch layouts. */
export function initWeights(seed: number): Float32Array {
  const shapes = paramShapes({ imageSize: 28, convFilters: 32, hidden: 128, classes: 10 });
  const rng = new Rng(seed); // the tfjs side's weights; burn draws its own in the core
  const parts = shapes.map((shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n);
    if (shape.length === 1) return out;
    const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
    const limit = Math.sqrt(6 / ((shape[0]! + shape[1]!) * receptive));
    for (let i = 0; i < n; i++) out[i] = (rng.next() * 2 - 1) * limit;
    return out;
  });
  return concatFloat32(parts);
}

async function vatStepper(spec: RunSpec): Promise<Stepper> {
  if (!['cpu', 'burn-cpu', 'webgpu'].includes(spec.backend)) throw new Error(`vat-core has no backend '${spec.backend}'; use cpu, burn-cpu or webgpu`);
  const seed = await seedOptions();
  const trainer = await Trainer.create({
    ...seed.trainer,
    vat: spec.vat,
    backend: spec.backend as 'cpu' | 'burn-cpu' | 'webgpu',
    engine: spec.engine,
    threads: spec.threads,
    seed: spec.seed,
  });
  return {
    adapter: trainer.adapter.description,
    step: async (x, y) => (await trainer.trainStep(x, y, seed.loop.lr)).loss,
    dispose: () => trainer.dispose(),
  };
}

async function tfjsStepper(spec: RunSpec, describe: () => Promise<string>): Promise<Stepper> {
  const seed = await seedOptions();
  const trainer = await ReferenceTrainer.create({ ...seed.trainer, vat: spec.vat }, initWeights(spec.seed), spec.backend);
  const rng = new Rng(spec.seed ^ 0x5bd1e995);
  return {
    adapter: await describe(),
    step: async (x, y) => {
      // The direction d is drawn on the host in each step, as the core draws its own inside
      // the step: Box-Muller, one normal per pixel.
      let d: Float32Array | undefined;
      if (spec.vat) {
        d = new Float32Array(x.length);
        for (let i = 0; i < d.length; i += 2) {
          const r = Math.sqrt(-2 * Math.log(1 - rng.next()));
          const t = 2 * Math.PI * rng.next();
          d[i] = r * Math.cos(t);
          if (i + 1 < d.length) d[i + 1] = r * Math.sin(t);
        }
      }
      return (await trainer.trainStep({ x, y, d }, seed.loop.lr)).loss;
    },
    dispose: () => trainer.dispose(),
  };
}

/**
 * Runs one spec. `now` is the host's monotonic clock in ms; `describeTfjs` names tfjs's backend
 * and adapter once it is selected; `onStep` reports progress.
 */
export async function runSpec(
  spec: RunSpec,
  data: BenchData,
  now: () => number,
  describeTfjs: () => Promise<string> = async () => `tfjs ${spec.backend}`,
  onStep: (phase: 'warmup' | 'measure', i: number, ms: number) => void = () => {},
): Promise<RunResult> {
  if (data.count < spec.batch) throw new Error(`the bench data holds ${data.count} images, fewer than one batch of ${spec.batch}`);
  if (spec.impl === 'torch') throw new Error('PyTorch runs in its own process (torch/seed_step.py)');
  const stepper = spec.impl === 'vat' ? await vatStepper(spec) : await tfjsStepper(spec, describeTfjs);
  const batches = Math.floor(data.count / spec.batch);
  let b = 0;
  const losses: number[] = [];
  const timed = async (): Promise<number> => {
    const lo = (b % batches) * spec.batch;
    b++;
    const x = data.x.subarray(lo * data.pixels, (lo + spec.batch) * data.pixels);
    const y = data.y.subarray(lo, lo + spec.batch);
    const t0 = now();
    const loss = await stepper.step(x, y);
    const ms = now() - t0;
    if (!Number.isFinite(loss)) throw new Error(`${spec.impl} ${spec.backend}: step ${b} gave a non-finite loss (${loss})`);
    losses.push(loss);
    return ms;
  };
  try {
    const warmupMs: number[] = [];
    for (let i = 0; i < spec.warmup; i++) {
      warmupMs.push(await timed());
      onStep('warmup', i, warmupMs[i]!);
    }
    const stepMs: number[] = [];
    const start = now();
    while (stepMs.length < spec.maxSteps && (stepMs.length < spec.minSteps || now() - start < spec.minSeconds * 1000)) {
      stepMs.push(await timed());
      onStep('measure', stepMs.length - 1, stepMs[stepMs.length - 1]!);
    }
    return summarize(spec, stepper.adapter, warmupMs, stepMs, losses);
  } finally {
    stepper.dispose();
  }
}

/** The figures of a run from its step times (any implementation, PyTorch's included). */
export function summarize(spec: RunSpec, adapter: string, warmupMs: number[], stepMs: number[], losses: number[]): RunResult {
  const sorted = [...stepMs].sort((a, c) => a - c);
  const mid = sorted.length >> 1;
  const medianMs = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const meanMs = stepMs.reduce((s, v) => s + v, 0) / stepMs.length;
  return {
    spec,
    adapter,
    warmupMs,
    stepMs,
    medianMs,
    meanMs,
    minMs: sorted[0]!,
    imgPerSec: (spec.batch * 1000) / medianMs,
    firstLoss: losses[0]!,
    lastLoss: losses[losses.length - 1]!,
  };
}
