// What the page shows, in one object, kept on `window.__vat` so that the end-to-end tests read
// numbers, not pixels; and the page's small shared helpers (elements, errors, times).
import type { EpochStats, ResolvedBackend } from '@vat/core';

import type { DataSummary, EvalSummary, ProbeResult, RunEnd, RunPhase, StoredRun, ViewUpdate, WireError } from '../protocol.js';

interface StepPoint {
  step: number;
  ce: number;
  lds: number;
}

export const state = {
  ready: false,
  probe: undefined as ProbeResult | undefined,
  adapter: '',
  backend: '' as '' | ResolvedBackend,
  phase: 'loading' as RunPhase | 'loading',
  data: undefined as DataSummary | undefined,
  step: 0,
  epoch: 0,
  epochs: 0,
  imagesPerSecond: 0,
  steps: [] as StepPoint[],
  history: [] as EpochStats[],
  monitor: [] as { epoch: number; accuracy: number }[],
  /** The end-of-run test evaluation. */
  test: undefined as EvalSummary | undefined,
  /** The last evaluation of loaded or current weights. */
  evaluation: undefined as EvalSummary | undefined,
  view: undefined as ViewUpdate | undefined,
  viewCount: 0,
  storedRun: null as StoredRun | null,
  hasModel: false,
  draw: undefined as { probs: number[]; prediction: number } | undefined,
  errors: {} as Record<string, WireError | undefined>,
  lastRun: undefined as RunEnd | undefined,
  /** valSize of the run shown: 0 means the val curve is on the test set. */
  valSize: 1,
};
(window as unknown as { __vat: typeof state }).__vat = state;

export const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

export const form = $<HTMLFormElement>('options');
/** The form's input for option `name`. */
export const field = (name: string) => form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement;

export const buttons = {
  start: $<HTMLButtonElement>('start'),
  pause: $<HTMLButtonElement>('pause'),
  resume: $<HTMLButtonElement>('resume'),
  stop: $<HTMLButtonElement>('stop'),
  download: $<HTMLButtonElement>('download'),
  evaluate: $<HTMLButtonElement>('evaluate'),
};

const ERROR_ELEMENTS: Record<string, string> = {
  train: 'train-error',
  data: 'data-error',
  weights: 'weights-error',
  view: 'vat-error',
  checkpoint: 'train-error',
  draw: 'weights-error',
};

/** Shows (or, with undefined, clears) the error of one panel. */
export function showError(where: string, e: WireError | undefined): void {
  state.errors[where] = e;
  const el = $(ERROR_ELEMENTS[where] ?? 'train-error');
  el.textContent = e ? `${e.name}: ${e.message}` : '';
  el.dataset.errorName = e?.name ?? '';
}

export const asWire = (err: unknown): WireError => ({ name: (err as Error).name ?? 'Error', message: (err as Error).message ?? String(err) });

export const formatSeconds = (s: number) => (s < 90 ? `${Math.round(s)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);
