// Engines: where the vat-core crate runs.
// - 'native': the Node addon built from the same crate (crates/vat-node), on every core;
// - 'wasm': the WebAssembly module. In a browser worker of a cross-origin isolated page its CPU
//   backend runs threaded (packages/wasm/pkg-threads), elsewhere on one thread.
// Each environment's entry point (index.node.ts, index.browser.ts) registers the engines it has,
// so nothing here looks at which runtime it is in.

import { BackendUnavailableError, InvalidConfigError } from './errors.js';
import type { StepStats } from './trainer.js';

export type EngineName = 'auto' | 'wasm' | 'native';
export const ENGINES: readonly EngineName[] = ['auto', 'wasm', 'native'];

export function parseEngine(value: string): EngineName {
  if ((ENGINES as readonly string[]).includes(value)) return value as EngineName;
  throw new InvalidConfigError(`unknown engine '${value}'; use one of ${ENGINES.join(', ')}`);
}

/** `threads`: undefined (every core) or a positive integer. */
export function parseThreads(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 1) return value;
  throw new InvalidConfigError(`threads must be a positive integer, got ${String(value)}`);
}

type MaybePromise<T> = T | Promise<T>;

/** One training step's statistics, as the engines return them (the Trainer's StepStats plus wasm's free()). */
export interface CoreStepStats extends StepStats {
  free?(): void;
}

export interface CoreEvalStats {
  loss: number;
  accuracy: number;
  count: number;
  confusion: Uint32Array;
  predicted: Uint32Array;
  free?(): void;
}

export interface CoreVatView {
  r_adv?: Float32Array;
  rAdv?: Float32Array;
  p: Float32Array;
  q: Float32Array;
  kl: Float32Array;
  free?(): void;
}

export interface CoreInspection {
  logits: Float32Array;
  loss: number;
  ce: number;
  lds: number;
  entropy: number;
  /** wasm-bindgen keeps the Rust name, napi camel-cases it. */
  r_adv?: Float32Array;
  rAdv?: Float32Array;
  grads: Float32Array;
  updated: Float32Array;
  eval_logits?: Float32Array;
  evalLogits?: Float32Array;
  free?(): void;
}

/** A trainer inside an engine (the wasm module's or the addon's `VatTrainer`). */
export interface CoreHandle {
  readonly backend: string;
  readonly threads: number;
  readonly adapter: string;
  readonly configJson: string;
  readonly step: number;
  /** After resumeTrainer: the checkpoint's loop state ("" otherwise), and the settings it changed (a JSON array). */
  readonly resumedLoopState: string;
  readonly overridden: string;
  trainStep(x: Float32Array, y: Uint32Array, xUnlabeled: Float32Array | undefined, lr: number): MaybePromise<CoreStepStats>;
  evaluate(x: Float32Array, y: Uint32Array, batchSize: number): MaybePromise<CoreEvalStats>;
  predict(x: Float32Array): MaybePromise<Float32Array>;
  vatView(x: Float32Array, seed: number): MaybePromise<CoreVatView>;
  accumulateBatchNorm(x: Float32Array): MaybePromise<void>;
  applyBatchNorm(): MaybePromise<number>;
  exportWeights(): MaybePromise<Uint8Array>;
  importWeights(bytes: Uint8Array): MaybePromise<void>;
  exportCheckpoint(loopState: string): MaybePromise<Uint8Array>;
  importCheckpoint(bytes: Uint8Array): MaybePromise<string>;
  free?(): void;
}

/** What the wasm module and the native addon both export (crates/vat-core/src/web.rs). */
export interface CoreBindings {
  version(): string;
  availableThreads(): number;
  parseConfig(configJson: string): string;
  /** The core's defaults applied to a run's options (flat JSON): `{"train": ..., "loop": ...}`. */
  resolveOptions(optionsJson: string): string;
  modelPresets(): string;
  createTrainer(backend: string, configJson: string, threads: number): MaybePromise<CoreHandle>;
  resumeTrainer(backend: string, checkpoint: Uint8Array, overridesJson: string, allowOverrides: boolean, threads: number): MaybePromise<CoreHandle>;
  trainerFromWeights(backend: string, weights: Uint8Array, threads: number): MaybePromise<CoreHandle>;
  /** Brings up wgpu's WebGPU device (once per process) and returns its adapter line; only the main wasm module has it. */
  startWebGpu?(): Promise<string>;
  inspect(
    backend: string,
    threads: number,
    configJson: string,
    weights: Float32Array,
    x: Float32Array,
    y: Uint32Array,
    xUnlabeled: Float32Array | undefined,
    d: Float32Array | undefined,
    masksLabeled: Float32Array | undefined,
    masksUnlabeled: Float32Array | undefined,
    lr: number,
  ): MaybePromise<CoreInspection>;
}

/** An engine started for one backend. */
export interface EngineChoice {
  engine: 'wasm' | 'native';
  bindings: CoreBindings;
  /** Threads its CPU backend will use. */
  threads: number;
  /** For the adapter line: 'native addon', 'WebAssembly', 'WebAssembly, threaded'. */
  label: string;
  /** Why `auto` chose it, or why it runs on fewer threads than the machine has. */
  reason?: string;
}

/** What an environment's entry point provides. */
export interface Platform {
  /**
   * Starts the engine for `backend` ('cpu', 'burn-cpu' or 'webgpu'). `threads` is what the
   * caller asked for; undefined means every core for the CPU backend.
   */
  engine(name: EngineName, backend: string, threads: number | undefined): Promise<EngineChoice>;
  /** The bindings to use when no engine has been asked for (to resolve options). */
  bindings(): Promise<CoreBindings>;
  /** WebGPU's entry point here (navigator.gpu, or Dawn in Node), if there is one. */
  gpu(): Promise<GPU | undefined>;
  /** What to do when there is no WebGPU here. */
  noGpuAdvice: string;
}

let current: Platform | undefined;

export function registerPlatform(p: Platform): void {
  current = p;
}

export function platform(): Platform {
  if (!current) {
    throw new BackendUnavailableError(
      "@vat/core was loaded without its environment's entry point; import '@vat/core' (its package exports pick the node or browser build), not its source files",
    );
  }
  return current;
}

/** Every engine's error for asking more than one thread of a backend that has one. */
export function oneThreadOnly(backend: string, threads: number | undefined): number {
  if (threads !== undefined && threads > 1) {
    throw new InvalidConfigError(`backend '${backend}' runs on one thread; threads must be 1, got ${threads} (only backend 'cpu' takes more)`);
  }
  return 1;
}
