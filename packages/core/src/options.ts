// A run's options: their names, kinds and groups in one table (which the CLI's flags and the web
// form are built from), and one function that applies a preset, the caller's values and the
// core's defaults. The defaults themselves live in the Rust core (crates/vat-core/src/config.rs:
// TrainConfig, LoopConfig, Options::resolve); nothing here restates them.

import type { BackendName } from './backend.js';
import { type CoreBindings, type EngineName, parseEngine, parseThreads, platform } from './engine.js';
import { InvalidConfigError, coreCall } from './errors.js';
import { PRESETS } from './presets.js';

/** One layer of a model spec (crates/vat-core/src/spec.rs has each layer's definition). */
export type LayerSpec =
  | { type: 'conv'; filters: number; kernel: number; stride?: number; padding?: 'valid' | 'same'; bias?: boolean }
  | { type: 'maxPool'; size: number; stride?: number }
  | { type: 'globalAvgPool' }
  | { type: 'dense'; units: number; bias?: boolean }
  | { type: 'relu' }
  | { type: 'leakyRelu'; slope?: number }
  | { type: 'dropout'; rate: number }
  | { type: 'batchNorm'; momentum?: number; eps?: number }
  | { type: 'gaussianNoise'; std: number };

/** A declarative model: one example's `[channels, height, width]`, the class count, the layers. */
export interface ModelSpec {
  input: [number, number, number];
  classes: number;
  layers: LayerSpec[];
}

/** The model: the seed's CNN (the default, set by the fields below `inputShape`), a preset, or a spec. */
export interface ModelOptions {
  /**
   * A preset by name: 'seed-cnn' (the default), 'mlp-1200-600-300-150', 'mlp-1200-1200',
   * 'conv-small', 'conv-large' (crates/vat-core/src/spec.rs, PRESETS).
   */
  model?: string;
  /** A model given as a spec, instead of a preset. */
  modelSpec?: ModelSpec;
  /** One example's `[channels, height, width]`, which a preset is built for (default `[1, imageSize, imageSize]`). */
  inputShape?: [number, number, number];
  /**
   * Per-channel standardisation of every input, `(x - mean[c]) / std[c]` on pixel / scale, done by
   * the core before the model (VAT then perturbs the standardised input); see `channelStats`.
   * It travels in the weights file with the model.
   */
  normalization?: { mean: number[]; std: number[] };
  /** Side of the square, single-channel input of the seed's CNN. */
  imageSize?: number;
  /** Filters per conv layer. */
  convFilters?: number;
  /** Hidden units. */
  hidden?: number;
  classes?: number;
  /** The seed's dropout (after the pool and after the hidden layer). */
  dropout?: boolean;
  dropoutConv?: number;
  dropoutDense?: number;
}

/** The VAT term. */
export interface VatOptions {
  /** Add alpha * LDS to the loss. */
  vat?: boolean;
  /** Norm of r_adv per sample. */
  eps?: number;
  /** Norm of the power-iteration probe. */
  xi?: number;
  powerIterations?: number;
  /** Weight of LDS. */
  alpha?: number;
  /** Add the entropy of p(y|x) on the VAT batch (VAT+EntMin). */
  entmin?: boolean;
  /** Weight of that entropy (VAT+EntMin: 1). */
  entminWeight?: number;
}

export interface OptimizerOptions {
  optimizer?: 'adadelta' | 'adam';
  /** Adadelta's decay. */
  rho?: number;
  /** Adam's moments. */
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

/** Where and how the trainer runs. */
export interface EngineOptions {
  /** 'auto' (default): a hardware WebGPU adapter if there is one, else the CPU. */
  backend?: BackendName;
  /** 'auto' (default): the native addon for the CPU backend in Node when it is built, else wasm. */
  engine?: EngineName;
  /** Threads of the CPU backend. Default: every core the engine can use. */
  threads?: number;
}

/** What `Trainer.create` takes. */
export interface TrainerOptions extends ModelOptions, VatOptions, OptimizerOptions, EngineOptions {
  /** Seeds weight init, dropout, the VAT direction and the data order. */
  seed?: number;
}

/** What `train` takes: the loop's options, never the trainer's. */
export interface LoopOptions {
  epochs?: number;
  /** Labeled examples per step. */
  batchSize?: number;
  /** Unlabeled examples per step in semi-supervised mode. */
  unlabeledBatchSize?: number;
  /** Semi-supervised: keep this many labels (balanced per class); VAT runs on unlabeled batches. */
  labeled?: number;
  /** Use only this many training examples (after the validation hold-out). */
  trainSize?: number;
  /** Hold out this many training examples for validation; 0 validates on the test set, as the seed did. */
  valSize?: number;
  /** The learning rate. Default: the trainer's optimiser's (1.0 for Adadelta, 0.002 for Adam). */
  lr?: number;
  /** Multiply the learning rate by this after every epoch. */
  lrDecay?: number;
  evalBatchSize?: number;
  /** Write a checkpoint at least this often, in seconds (and at every epoch end). */
  checkpointSeconds?: number;
  /**
   * After the last epoch, re-estimate batch norm's running statistics over the training images
   * (`Trainer.reestimateBatchNorm`; the official VAT code's last step). Needs batch norm layers.
   */
  reestimateBn?: boolean;
}

/** Everything a run takes, as presets, the CLI and the web form hold it. */
export type RunOptions = TrainerOptions & LoopOptions;

/** How each option is written and checked by the CLI and the web form. */
export interface OptionSpec {
  kind: 'int' | 'number' | 'boolean' | 'choice';
  /** Which part of the run it shapes (a fieldset in the web form). */
  group: 'model' | 'vat' | 'optimizer' | 'loop' | 'engine';
  /** The smallest value a flag accepts ('number': strictly above it when 0 and `positive`). */
  min?: number;
  /** 'number': must be above 0. */
  positive?: boolean;
  choices?: readonly string[];
  help: string;
}

/** Every option, once. The order is the CLI's and the form's. */
export const OPTIONS = {
  epochs: { kind: 'int', group: 'loop', min: 1, help: 'passes over the training set' },
  batchSize: { kind: 'int', group: 'loop', min: 1, help: 'labeled examples per step' },
  unlabeledBatchSize: { kind: 'int', group: 'loop', min: 1, help: 'unlabeled examples per step (semi-supervised)' },
  labeled: { kind: 'int', group: 'loop', min: 1, help: 'semi-supervised: keep N labels, balanced per class' },
  trainSize: { kind: 'int', group: 'loop', min: 1, help: 'use only N training examples' },
  valSize: { kind: 'int', group: 'loop', min: 0, help: 'hold out N training examples for validation (0: validate on the test set)' },
  dropout: { kind: 'boolean', group: 'model', help: "the seed's dropout (.25 after the pool, .5 after the hidden layer)" },
  vat: { kind: 'boolean', group: 'vat', help: 'add the VAT term (off: plain training)' },
  entmin: { kind: 'boolean', group: 'vat', help: 'add the entropy term (VAT+EntMin)' },
  entminWeight: { kind: 'number', group: 'vat', min: 0, help: 'weight of the entropy term (VAT+EntMin: 1)' },
  eps: { kind: 'number', group: 'vat', positive: true, help: 'norm of r_adv per sample' },
  xi: { kind: 'number', group: 'vat', positive: true, help: 'norm of the power-iteration probe' },
  powerIterations: { kind: 'int', group: 'vat', min: 0, help: 'power iterations' },
  alpha: { kind: 'number', group: 'vat', min: 0, help: 'weight of the VAT term' },
  optimizer: { kind: 'choice', group: 'optimizer', choices: ['adadelta', 'adam'], help: 'optimiser' },
  lr: { kind: 'number', group: 'loop', positive: true, help: "learning rate (default: the optimiser's)" },
  lrDecay: { kind: 'number', group: 'loop', positive: true, help: 'multiply the learning rate by this after each epoch' },
  backend: {
    kind: 'choice',
    group: 'engine',
    choices: ['auto', 'cpu', 'burn-cpu', 'webgpu'],
    help: 'auto: hardware WebGPU if present, else CPU; burn-cpu: burn-flex, the baseline',
  },
  engine: { kind: 'choice', group: 'engine', choices: ['auto', 'wasm', 'native'], help: 'auto: the native addon for the CPU backend when built, else wasm' },
  threads: { kind: 'int', group: 'engine', min: 1, help: 'threads of the CPU backend (default: every core)' },
  seed: { kind: 'int', group: 'loop', min: 0, help: 'seed for init, data order, dropout and d' },
  evalBatchSize: { kind: 'int', group: 'loop', min: 1, help: 'batch size for evaluation' },
  checkpointSeconds: { kind: 'number', group: 'loop', positive: true, help: 'write a checkpoint at least this often' },
  reestimateBn: {
    kind: 'boolean',
    group: 'loop',
    help: "after the last epoch, re-estimate batch norm's running statistics over the training images",
  },
} as const satisfies Partial<Record<keyof RunOptions, OptionSpec>>;

/** The keys `train` takes. */
export const LOOP_KEYS = [
  'epochs',
  'batchSize',
  'unlabeledBatchSize',
  'labeled',
  'trainSize',
  'valSize',
  'lr',
  'lrDecay',
  'evalBatchSize',
  'checkpointSeconds',
  'reestimateBn',
] as const;
const ENGINE_KEYS = ['backend', 'engine', 'threads'] as const;

/** The trainer's options with every default filled in. */
export type ResolvedTrainerOptions = Required<Omit<TrainerOptions, 'threads'>> & { threads?: number };
/** The loop's options with every default filled in (`labeled` and `trainSize` stay optional: unset means all). */
export type ResolvedLoopOptions = Required<Omit<LoopOptions, 'labeled' | 'trainSize'>> & Pick<LoopOptions, 'labeled' | 'trainSize'>;

export interface ResolvedOptions {
  trainer: ResolvedTrainerOptions;
  loop: ResolvedLoopOptions;
}

/** The core's resolveOptions output. */
interface CoreResolved {
  train: Record<string, unknown> & { model: Record<string, unknown> };
  loop: Record<string, unknown>;
}

/** The core's JSON (nested model, no engine keys, no nulls) for `options`. */
export function coreOptions(options: RunOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) {
    if (v !== undefined && !(ENGINE_KEYS as readonly string[]).includes(k)) out[k] = v;
  }
  if (options.seed !== undefined && !(Number.isSafeInteger(options.seed) && options.seed >= 0)) {
    throw new InvalidConfigError(`seed must be a non-negative integer, got ${options.seed}`);
  }
  return out;
}

/** Flattens the core's resolved JSON into the API's shape. */
export function flattenResolved(r: CoreResolved, engine: EngineOptions): ResolvedOptions {
  const { model, ...train } = r.train;
  // The core's model carries a spec model's spec as `spec`: the API's name for it is modelSpec,
  // so that resolved options given back to the core resolve to the same model.
  const { spec, ...seedModel } = model as Record<string, unknown>;
  const loop: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r.loop)) if (v !== null) loop[k] = v;
  return {
    trainer: {
      ...seedModel,
      ...(spec ? { modelSpec: spec } : {}),
      ...train,
      backend: engine.backend ?? 'auto',
      engine: engine.engine ?? 'auto',
      threads: engine.threads,
    } as ResolvedTrainerOptions,
    loop: loop as ResolvedLoopOptions,
  };
}

/** Resolves `options` with `bindings` (the core that will run them, or any). */
export async function resolveWith(bindings: CoreBindings, options: RunOptions): Promise<ResolvedOptions> {
  const json = await coreCall(() => bindings.resolveOptions(JSON.stringify(coreOptions(options))));
  if (options.engine !== undefined) parseEngine(options.engine);
  parseThreads(options.threads);
  return flattenResolved(JSON.parse(json) as CoreResolved, options);
}

/**
 * The one place a run's options are put together: the preset's values (when given), then
 * `overrides`, then the core's defaults (the optimiser's learning rate among them), checked.
 */
export async function resolveOptions(overrides: RunOptions = {}, preset?: string): Promise<ResolvedOptions> {
  let base: RunOptions = {};
  if (preset !== undefined) {
    const p = PRESETS[preset];
    if (!p) throw new InvalidConfigError(`unknown preset '${preset}'; use one of ${Object.keys(PRESETS).join(', ')}`);
    base = p.options;
  }
  const merged: RunOptions = { ...base };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
  // A preset's learning rate belongs to its optimiser: another optimiser without an lr of its
  // own takes that optimiser's default rather than, say, Adadelta's 1.0 for Adam.
  if (overrides.optimizer !== undefined && overrides.optimizer !== base.optimizer && overrides.lr === undefined) delete merged.lr;
  // A model the caller names replaces the preset's, given either way (a preset name or a spec).
  if (overrides.modelSpec !== undefined && overrides.model === undefined) delete merged.model;
  if (overrides.model !== undefined && overrides.modelSpec === undefined) delete merged.modelSpec;
  return resolveWith(await platform().bindings(), merged);
}

/** The model presets the core builds (`model` takes their names), with what each is. */
export async function modelPresets(): Promise<{ name: string; description: string }[]> {
  const bindings = await platform().bindings();
  return JSON.parse(bindings.modelPresets()) as { name: string; description: string }[];
}

/** Splits a run's options into the trainer's and the loop's. */
export function splitOptions(o: RunOptions): { trainer: TrainerOptions; loop: LoopOptions } {
  const trainer: Record<string, unknown> = {};
  const loop: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) ((LOOP_KEYS as readonly string[]).includes(k) ? loop : trainer)[k] = v;
  return { trainer: trainer as TrainerOptions, loop: loop as LoopOptions };
}
