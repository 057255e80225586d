// Messages between the page (main.ts) and the training worker (worker.ts). Requests are calls
// with an id and a reply; events are pushed by the worker while a run goes on.
import type { EpochStats, ResolvedBackend, ResolvedOptions, RunOptions, StepStats } from '@vat/core';

/** An error as it crosses postMessage: the stable `name` of @vat/core's classes and the message. */
export interface WireError {
  name: string;
  message: string;
}

export interface SetSummary {
  count: number;
  channels: number;
  rows: number;
  cols: number;
  /** Where the images came from: 'MNIST' or the file name. */
  source: string;
}

export interface DataSummary {
  train: SetSummary;
  test: SetSummary;
}

export interface ProbeResult {
  available: boolean;
  description: string;
  isFallbackAdapter?: boolean;
  /** Why WebGPU is missing (a BackendUnavailableError message). */
  error?: WireError;
}

/** Kept in IndexedDB beside the checkpoint, so a reloaded page knows what it resumes. */
/** What the page shows of a run kept in IndexedDB. The checkpoint beside it is what resumes it. */
export interface StoredRun {
  epochs: number;
  valSize: number;
  dataSource: string;
  step: number;
  epoch: number;
  savedAt: string;
}

export interface EvalSummary {
  loss: number;
  accuracy: number;
  count: number;
  confusion: number[];
  /** What was evaluated: 'run' (end of a training run), 'imported weights', 'current weights'. */
  what: string;
}

/** One example's `[channels, height, width]`. */
export type ImageShape = [number, number, number];

export interface VatSample {
  index: number;
  shape: ImageShape;
  label: number;
  x: Float32Array;
  rAdv: Float32Array;
  /** p(y|x) and p(y|x + r_adv). */
  before: number[];
  after: number[];
  /** ||r_adv||_2 of this sample. */
  norm: number;
  /** KL(p(y|x) || p(y|x + r_adv)). */
  kl: number;
}

export interface ViewUpdate {
  step: number;
  /** Epochs done, fractional within an epoch. */
  epochProgress: number;
  eps: number;
  xi: number;
  /** Mean LDS over the chosen samples, as the core's `inspect` reports it. */
  lds: number;
  samples: VatSample[];
  /** Predictions on the first `monitor.count` test images: accuracy and confusion. */
  monitor: { count: number; accuracy: number; confusion: number[] };
  /** The sample grid: the first grid.length test images. */
  grid: { label: number; prediction: number; confidence: number }[];
}

export type WorkerEvent =
  | {
      event: 'step';
      step: number;
      epoch: number;
      epochs: number;
      batch: number;
      batches: number;
      stats: StepStats;
      imagesPerSecond: number;
      etaSeconds: number;
      runningLoss: number;
    }
  | { event: 'epoch'; stats: EpochStats; history: EpochStats[] }
  | { event: 'view'; view: ViewUpdate }
  /** `stored` is what IndexedDB now holds (already written), absent while stopping. */
  | { event: 'checkpoint'; step: number; stored?: StoredRun }
  | { event: 'adapter'; description: string; backend: ResolvedBackend; reason?: string }
  | { event: 'phase'; phase: RunPhase; detail?: string }
  | { event: 'error'; error: WireError; where: string };

export type RunPhase = 'idle' | 'starting' | 'training' | 'pausing' | 'paused' | 'stopping' | 'stopped' | 'done' | 'failed';

export interface RunEnd {
  interrupted: boolean;
  stopped: boolean;
  step: number;
  seconds: number;
  test?: EvalSummary;
}

/** The worker's methods, callable from the page. */
export interface WorkerApi {
  probe(): Promise<ProbeResult>;
  loadMnist(baseUrl: string): Promise<DataSummary>;
  loadFiles(files: { trainImages?: File; trainLabels?: File; testImages?: File; testLabels?: File }): Promise<DataSummary>;
  /** A dropped or chosen data set: a CSV, a .npz, or a folder's files with their paths. */
  loadDataset(entries: { path: string; file: File }[]): Promise<DataSummary>;
  /** The core's model presets (the form's model choices). */
  modelPresets(): Promise<{ name: string; description: string }[]>;
  /** The core's defaults applied to `options` (the form shows these). */
  resolveOptions(options: RunOptions): Promise<ResolvedOptions>;
  /** `standardize`: standardise each channel with the training images' mean and std (the CLI's --normalize standardize). */
  start(options: RunOptions, standardize?: boolean): Promise<RunEnd>;
  resume(backend?: string): Promise<RunEnd>;
  pause(): Promise<void>;
  stop(): Promise<void>;
  storedRun(): Promise<StoredRun | null>;
  discardStoredRun(): Promise<void>;
  predict(x: Float32Array): Promise<number[]>;
  exportWeights(): Promise<Uint8Array>;
  importWeights(bytes: Uint8Array, backend: string): Promise<EvalSummary>;
  evaluate(): Promise<EvalSummary>;
  setView(indices: number[], refreshEvery: number, monitorSize: number): Promise<void>;
  refresh(): Promise<void>;
  testImages(indices: number[]): Promise<{ x: Float32Array; labels: number[] }>;
}

export type Request = { [K in keyof WorkerApi]: { id: number; method: K; args: Parameters<WorkerApi[K]> } }[keyof WorkerApi];

export type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: WireError };

export function toWire(err: unknown): WireError {
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { name: 'Error', message: String(err) };
}
