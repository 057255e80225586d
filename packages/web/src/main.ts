// The page: the form, the controls and the pictures. Training runs in worker.ts; this file
// only sends it calls and draws what it reports. Everything the end-to-end tests check is also
// kept on `window.__vat` (state below), so they read numbers, not pixels.
import { type EpochStats, OPTIONS, type OptionSpec, type ResolvedBackend, type RunOptions } from '@vat/core';

import { drawConfusion, drawGray, drawSigned, lineChart, probabilityBars } from './charts.js';
import { SIDE, drawingPad, toMnist } from './draw.js';
import { PRESETS } from './presets.js';
import type { DataSummary, EvalSummary, ProbeResult, Reply, RunEnd, RunPhase, StoredRun, ViewUpdate, WireError, WorkerApi, WorkerEvent } from './protocol.js';

// ---------- the worker ----------

const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
let nextId = 1;
const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

function wireError(e: WireError): Error {
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

function call<K extends keyof WorkerApi>(method: K, ...args: Parameters<WorkerApi[K]>): ReturnType<WorkerApi[K]> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, method, args });
  }) as ReturnType<WorkerApi[K]>;
}

worker.onmessage = (e: MessageEvent<Reply | WorkerEvent>) => {
  const m = e.data;
  if ('id' in m) {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.ok) p?.resolve(m.value);
    else p?.reject(wireError(m.error));
  } else {
    onEvent(m);
  }
};
worker.onerror = (e) => showError('train', { name: 'BackendFailureError', message: `the training worker failed: ${e.message}` });

// ---------- state, readable by tests as window.__vat ----------

interface StepPoint {
  step: number;
  ce: number;
  lds: number;
}

const state = {
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

// ---------- elements ----------

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const form = $<HTMLFormElement>('options');
const field = (name: string) => form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement;
const buttons = {
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

function showError(where: string, e: WireError | undefined): void {
  state.errors[where] = e;
  const el = $(ERROR_ELEMENTS[where] ?? 'train-error');
  el.textContent = e ? `${e.name}: ${e.message}` : '';
  el.dataset.errorName = e?.name ?? '';
}

const asWire = (err: unknown): WireError => ({ name: (err as Error).name ?? 'Error', message: (err as Error).message ?? String(err) });

// ---------- the form ----------

/** The form's fieldsets: @vat/core's OPTIONS by group (the CLI's flags come from the same table). */
const FIELDSETS: [string, OptionSpec['group'][]][] = [
  ['data and loop', ['loop']],
  ['model and VAT', ['model', 'vat']],
  ['optimiser and engine', ['optimizer', 'engine']],
];
const OPTION_ENTRIES = Object.entries(OPTIONS) as [keyof RunOptions, OptionSpec][];

/** Builds one input per option, before the form's buttons. */
function buildForm(): void {
  const controls = form.querySelector('.controls')!;
  for (const [legend, groups] of FIELDSETS) {
    const set = document.createElement('fieldset');
    set.innerHTML = `<legend>${legend}</legend>`;
    for (const [key, spec] of OPTION_ENTRIES.filter(([, o]) => groups.includes(o.group))) {
      const label = document.createElement('label');
      label.title = spec.help;
      if (spec.kind === 'boolean') {
        label.className = 'check';
        label.innerHTML = `<input name="${key}" type="checkbox" /> ${key}`;
      } else if (spec.kind === 'choice') {
        label.innerHTML = `${key} <select name="${key}">${spec.choices!.map((c) => `<option value="${c}">${c}</option>`).join('')}</select>`;
      } else {
        const min = spec.min ?? 0;
        label.innerHTML = `${key} <input name="${key}" type="number" min="${min}" step="${spec.kind === 'int' ? 1 : 'any'}" placeholder="${key === 'threads' ? 'every core' : 'off'}" />`;
      }
      set.append(label);
    }
    form.insertBefore(set, controls);
  }
  const preset = field('preset') as HTMLSelectElement;
  preset.innerHTML = Object.keys(PRESETS)
    .map((k) => `<option value="${k}">${k}</option>`)
    .join('');
}

/** Shows a preset's options with every default filled in (the core's, resolved by the worker). */
async function applyPreset(name: string): Promise<void> {
  const preset = PRESETS[name]!;
  const r = await call('resolveOptions', preset.options);
  const o: Record<string, unknown> = { ...r.trainer, ...r.loop };
  for (const [key, spec] of OPTION_ENTRIES) {
    const el = field(key);
    if (spec.kind === 'boolean') (el as HTMLInputElement).checked = !!o[key];
    else el.value = o[key] === undefined || o[key] === null ? '' : String(o[key]);
  }
  $('preset-description').textContent = preset.description;
}

/** The run's options: the preset's (which carry rho and epsilon) overridden by the form. */
function readOptions(): RunOptions {
  const preset = PRESETS[field('preset').value]!;
  const o: Record<string, unknown> = { ...preset.options };
  for (const [key, spec] of OPTION_ENTRIES) {
    const el = field(key);
    if (spec.kind === 'boolean') o[key] = (el as HTMLInputElement).checked;
    else if (el.value.trim() === '') delete o[key];
    else o[key] = spec.kind === 'choice' ? el.value : Number(el.value);
  }
  return o as RunOptions;
}

/** The form's own listeners (its inputs exist once buildForm has run). */
function listenToForm(): void {
  field('preset').addEventListener('change', () => void applyPreset(field('preset').value).catch((err) => showError('train', asWire(err))));
  // Another optimiser brings its own default learning rate.
  field('optimizer').addEventListener(
    'change',
    () =>
      void call('resolveOptions', { optimizer: field('optimizer').value as RunOptions['optimizer'] })
        .then((r) => {
          field('lr').value = String(r.loop.lr);
        })
        .catch((err) => showError('train', asWire(err))),
  );
}

// ---------- phases and buttons ----------

function setPhase(phase: RunPhase, detail?: string): void {
  state.phase = phase;
  const el = $('phase');
  el.textContent = detail ? `${phase} (${detail})` : phase;
  el.dataset.phase = phase;
  updateButtons();
}

function updateButtons(): void {
  const busy = ['starting', 'training', 'pausing', 'stopping'].includes(state.phase);
  buttons.start.disabled = !state.ready || busy;
  buttons.pause.disabled = state.phase !== 'training';
  buttons.resume.disabled = !state.ready || busy || !state.storedRun;
  buttons.stop.disabled = !(state.phase === 'training' || ((state.phase === 'paused' || !busy) && state.storedRun));
  buttons.download.disabled = !state.hasModel || state.phase === 'loading';
  buttons.evaluate.disabled = !state.hasModel || busy;
  const banner = $('stored-run');
  // After a reload: the run found in IndexedDB. (After a pause on this page, Resume says it.)
  banner.hidden = !state.storedRun || state.phase !== 'idle';
  if (state.storedRun) {
    const s = state.storedRun;
    $('stored-run-text').textContent =
      `A saved run is in this browser's storage: step ${s.step}, epoch ${s.epoch + 1} of ${s.epochs}, trained on ${s.dataSource.replace(' | ', ' and ')}, saved ${new Date(s.savedAt).toLocaleString()}.`;
  }
}

async function refreshStoredRun(): Promise<void> {
  state.storedRun = await call('storedRun');
  updateButtons();
}

// ---------- events from the worker ----------

function onEvent(e: WorkerEvent): void {
  switch (e.event) {
    case 'step': {
      state.step = e.step;
      state.epoch = e.epoch;
      state.epochs = e.epochs;
      state.imagesPerSecond = e.imagesPerSecond;
      state.steps.push({ step: e.step, ce: e.stats.ce, lds: e.stats.lds });
      $('ips').textContent = e.imagesPerSecond.toFixed(1);
      const done = (e.epoch * e.batches + e.batch + 1) / (e.epochs * e.batches);
      $<HTMLProgressElement>('progress').value = done;
      $('progress-text').textContent =
        `step ${e.step} · epoch ${e.epoch + 1}/${e.epochs}, batch ${e.batch + 1}/${e.batches} · CE ${e.stats.ce.toFixed(4)} · LDS ${e.stats.lds.toFixed(4)} · ` +
        `batch accuracy ${((100 * e.stats.correct) / e.stats.batch).toFixed(1)}% · ${e.imagesPerSecond.toFixed(1)} img/s · ETA ${formatSeconds(e.etaSeconds)}`;
      scheduleCharts();
      break;
    }
    case 'epoch':
      state.history = e.history;
      scheduleCharts();
      break;
    case 'view':
      state.view = e.view;
      state.viewCount += 1;
      state.hasModel = true;
      if (e.view.monitor.count) state.monitor.push({ epoch: e.view.epochProgress, accuracy: e.view.monitor.accuracy });
      renderView(e.view);
      scheduleCharts();
      updateButtons();
      break;
    case 'checkpoint':
      if (state.phase !== 'stopping' && e.stored) {
        state.storedRun = e.stored;
        updateButtons();
      }
      break;
    case 'adapter':
      state.adapter = e.description;
      state.backend = e.backend;
      state.hasModel = true;
      $('adapter').textContent = e.description;
      // Why the CPU backend runs on one thread here, for instance (no cross-origin isolation).
      $('adapter-note').textContent = e.reason ?? '';
      updateButtons();
      break;
    case 'phase':
      setPhase(e.phase, e.detail);
      break;
    case 'error':
      showError(e.where, e.error);
      break;
  }
}

const formatSeconds = (s: number) => (s < 90 ? `${Math.round(s)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);

let chartsPending = false;
function scheduleCharts(): void {
  if (chartsPending) return;
  chartsPending = true;
  requestAnimationFrame(() => {
    chartsPending = false;
    renderCharts();
  });
}

function renderCharts(): void {
  lineChart(
    $('loss-chart') as unknown as SVGSVGElement,
    [
      { name: 'CE', color: '#1f5fbf', points: state.steps.map((p) => [p.step, p.ce]) },
      { name: 'LDS', color: '#d2691e', points: state.steps.map((p) => [p.step, p.lds]) },
    ],
    { xLabel: 'step', yLabel: 'loss per step' },
  );
  const acc: { name: string; color: string; points: [number, number][]; dots?: boolean }[] = [
    { name: 'train', color: '#1f5fbf', points: state.history.map((h) => [h.epoch, h.trainAccuracy]), dots: true },
    { name: state.valSize > 0 ? 'val' : 'val (test set)', color: '#2e8b57', points: state.history.map((h) => [h.epoch, h.valAccuracy]), dots: true },
    { name: `test, first ${state.view?.monitor.count ?? 500}`, color: '#999', points: state.monitor.map((m) => [m.epoch, m.accuracy]) },
  ];
  if (state.test) acc.push({ name: 'test', color: '#c0392b', points: [[Math.max(1, state.history.length), state.test.accuracy]], dots: true });
  const lows = acc.flatMap((s) => s.points.map((p) => p[1]));
  lineChart($('acc-chart') as unknown as SVGSVGElement, acc, {
    xLabel: 'epoch',
    yLabel: 'accuracy',
    xMin: 0,
    yMin: lows.length ? Math.max(0, Math.floor(Math.min(...lows) * 10) / 10) : 0,
    yMax: 1,
  });
}

// ---------- the VAT view and the sample grid ----------

let gridImages: { x: Float32Array; labels: number[] } | undefined;
const GRID_COLS = 8;
const CELL = 58;

function renderGrid(view?: ViewUpdate): void {
  const canvas = $<HTMLCanvasElement>('grid');
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!gridImages) return;
  const n = gridImages.labels.length;
  ctx.font = '12px system-ui, sans-serif';
  ctx.textAlign = 'center';
  const px = SIDE * SIDE;
  for (let i = 0; i < n; i++) {
    const x = (i % GRID_COLS) * CELL + 1;
    const y = Math.floor(i / GRID_COLS) * (CELL + 12) + 1;
    drawGray(ctx, gridImages.x.subarray(i * px, (i + 1) * px), SIDE, x + 1, y + 1, 2);
    const g = view?.grid[i];
    if (g) {
      const wrong = g.prediction !== g.label;
      ctx.strokeStyle = wrong ? '#d11' : '#ccc';
      ctx.lineWidth = wrong ? 3 : 1;
      ctx.strokeRect(x, y, 2 * SIDE + 2, 2 * SIDE + 2);
      ctx.fillStyle = wrong ? '#d11' : '#333';
      ctx.fillText(wrong ? `${g.prediction} (is ${g.label})` : String(g.prediction), x + SIDE + 1, y + 2 * SIDE + 14);
    }
  }
}

$('grid').addEventListener('click', (e) => {
  const canvas = e.currentTarget as HTMLCanvasElement;
  const r = canvas.getBoundingClientRect();
  const cx = ((e.clientX - r.left) * canvas.width) / r.width;
  const cy = ((e.clientY - r.top) * canvas.height) / r.height;
  const i = Math.floor(cy / (CELL + 12)) * GRID_COLS + Math.floor(cx / CELL);
  if (!gridImages || i >= gridImages.labels.length) return;
  const input = $<HTMLInputElement>('vat-indices');
  const current = parseIndices(input.value).filter((k) => k !== i);
  input.value = [i, ...current].slice(0, 4).join(', ');
  void applyView(true);
});

function viewSettings(): [number[], number, number] {
  return [
    parseIndices($<HTMLInputElement>('vat-indices').value),
    Number($<HTMLInputElement>('refresh-every').value),
    Number($<HTMLInputElement>('monitor-size').value),
  ];
}

function parseIndices(text: string): number[] {
  return text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map(Number);
}

async function applyView(refreshNow: boolean): Promise<void> {
  try {
    await call('setView', ...viewSettings());
    showError('view', undefined);
    if (refreshNow && state.hasModel && state.phase !== 'training') await call('refresh');
  } catch (err) {
    showError('view', asWire(err));
  }
}
$('vat-indices').addEventListener('change', () => void applyView(true));
$('refresh-every').addEventListener('change', () => void applyView(false));
$('monitor-size').addEventListener('change', () => void applyView(false));
$('refresh').addEventListener('click', () => void applyView(true));

function renderView(view: ViewUpdate): void {
  const box = $('vat-view');
  box.replaceChildren();
  const scale = 3;
  for (const s of view.samples) {
    const row = document.createElement('div');
    row.className = 'vat-row';
    row.dataset.index = String(s.index);
    row.dataset.norm = String(s.norm);
    row.dataset.kl = String(s.kl);
    const canvas = document.createElement('canvas');
    const w = SIDE * scale;
    canvas.width = 3 * w + 16;
    canvas.height = w + 16;
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    const xAdv = s.x.map((v, i) => v + s.rAdv[i]!);
    drawGray(ctx, s.x, SIDE, 0, 0, scale);
    drawSigned(ctx, s.rAdv, SIDE, w + 8, 0, scale);
    drawGray(ctx, xAdv, SIDE, 2 * (w + 8), 0, scale);
    ctx.fillStyle = '#555';
    ctx.font = '11px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ['x', 'r_adv', 'x + r_adv'].forEach((t, k) => {
      ctx.fillText(t, k * (w + 8) + w / 2, w + 12);
    });
    const before = document.createElement('div');
    before.className = 'bars small';
    probabilityBars(before, s.before, s.label);
    const after = document.createElement('div');
    after.className = 'bars small';
    probabilityBars(after, s.after, s.label);
    const text = document.createElement('p');
    text.className = 'vat-numbers';
    text.innerHTML = `test #${s.index}, label ${s.label}<br>‖r<sub>adv</sub>‖ = <b class="norm">${s.norm.toFixed(4)}</b> (eps ${view.eps})<br>KL = <b class="kl">${s.kl.toExponential(3)}</b>`;
    const cap = (t: string, el: HTMLElement) => {
      const d = document.createElement('div');
      d.innerHTML = `<div class="caption">${t}</div>`;
      d.append(el);
      return d;
    };
    row.append(canvas, cap('p(y|x)', before), cap('p(y|x + r<sub>adv</sub>)', after), text);
    box.append(row);
  }
  const note = document.createElement('p');
  note.className = 'hint';
  note.textContent = `At step ${view.step}; LDS of these samples (the core's inspect): ${view.lds.toExponential(3)}.`;
  box.append(note);
  renderGrid(view);
  if (state.phase !== 'done' || !state.test) {
    drawConfusion($<HTMLCanvasElement>('confusion'), view.monitor.confusion);
    $('confusion-caption').textContent =
      `The first ${view.monitor.count} test images at step ${view.step}: accuracy ${(100 * view.monitor.accuracy).toFixed(1)}%. Rows: true digit; columns: prediction.`;
  }
}

function showEvaluation(e: EvalSummary, where: string): void {
  drawConfusion($<HTMLCanvasElement>('confusion'), e.confusion);
  $('confusion-caption').textContent =
    `${where}: the whole test set (${e.count} images), accuracy ${(100 * e.accuracy).toFixed(2)}%. Rows: true digit; columns: prediction.`;
}

// ---------- training controls ----------

function startedRun(): void {
  state.steps = [];
  state.history = [];
  state.monitor = [];
  state.test = undefined;
  $('test-result').textContent = '';
  renderCharts();
}

/**
 * Waits for a run to end. `before` is the phase to return to if it never starts. The page, not the
 * worker, sets the final phase (paused, stopped, done), and only after the result and what is left
 * in IndexedDB are in `state`: whoever sees the phase change sees the state that goes with it.
 */
async function runToEnd(p: Promise<RunEnd>, before: RunPhase): Promise<void> {
  showError('train', undefined);
  let end: RunEnd | undefined;
  try {
    end = await p;
  } catch (err) {
    showError('train', asWire(err));
    // Refused before training began (bad options, data that does not match the saved run, no
    // WebGPU): nothing changed, so the controls go back to where they were.
    if (state.phase === 'starting') setPhase(before);
  }
  try {
    await refreshStoredRun();
  } catch (err) {
    showError('train', asWire(err));
  }
  if (!end) return;
  state.lastRun = end;
  if (end.test) {
    state.test = end.test;
    state.evaluation = end.test;
    $('test-result').textContent =
      `Test accuracy ${(100 * end.test.accuracy).toFixed(2)}% on ${end.test.count} images (loss ${end.test.loss.toFixed(4)}), after ${end.step} steps in ${formatSeconds(end.seconds)}.`;
    $('test-result').dataset.accuracy = String(end.test.accuracy);
    showEvaluation(end.test, 'End of the run');
    scheduleCharts();
  }
  setPhase(end.stopped ? 'stopped' : end.interrupted ? 'paused' : 'done');
}

buttons.start.addEventListener('click', () => {
  const options = readOptions();
  const before = state.phase as RunPhase;
  startedRun();
  setPhase('starting');
  void runToEnd(
    call('resolveOptions', options).then((r) => {
      state.valSize = r.loop.valSize;
      return call('start', options);
    }),
    before,
  );
});
const resume = () => {
  // A stored run's options were resolved when it started.
  state.valSize = Number(state.storedRun?.valSize);
  const before = state.phase as RunPhase;
  setPhase('starting');
  state.test = undefined;
  // Where it runs is the form's choice now; what it trains with is the checkpoint's.
  void runToEnd(call('resume', field('backend').value), before);
};
buttons.resume.addEventListener('click', resume);
$('resume-stored').addEventListener('click', resume);
buttons.pause.addEventListener('click', () => void call('pause').catch((err) => showError('train', asWire(err))));
buttons.stop.addEventListener(
  'click',
  () =>
    void call('stop')
      .then(refreshStoredRun)
      .catch((err) => showError('train', asWire(err))),
);
$('discard-stored').addEventListener(
  'click',
  () =>
    void call('discardStoredRun')
      .then(refreshStoredRun)
      .catch((err) => showError('train', asWire(err))),
);
$('use-cpu').addEventListener('click', () => {
  field('backend').value = 'cpu';
  $('adapter').textContent = 'CPU: vat-core kernels in WebAssembly (chosen; this browser has no WebGPU)';
});

// ---------- data ----------

const mnistBase = () => new URL('mnist/', document.baseURI).href;

async function afterDataChange(d: DataSummary): Promise<void> {
  state.data = d;
  const s = (x: DataSummary['train']) => `${x.count} images from ${x.source}`;
  $('data-status').textContent = `Training: ${s(d.train)}. Test: ${s(d.test)}.`;
  gridImages = await call(
    'testImages',
    Array.from({ length: Math.min(48, d.test.count) }, (_, i) => i),
  );
  renderGrid(undefined);
}

$('load-files').addEventListener('click', async () => {
  const file = (id: string) => $<HTMLInputElement>(id).files?.[0];
  try {
    const d = await call('loadFiles', {
      trainImages: file('train-images'),
      trainLabels: file('train-labels'),
      testImages: file('test-images'),
      testLabels: file('test-labels'),
    });
    showError('data', undefined);
    await afterDataChange(d);
  } catch (err) {
    showError('data', asWire(err));
  }
});
$('load-mnist').addEventListener('click', async () => {
  try {
    await afterDataChange(await call('loadMnist', mnistBase()));
    showError('data', undefined);
  } catch (err) {
    showError('data', asWire(err));
  }
});

// ---------- weights ----------

buttons.download.addEventListener('click', async () => {
  try {
    const bytes = await call('exportWeights');
    const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = `vat-weights-step${state.step}.safetensors`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    showError('weights', undefined);
  } catch (err) {
    showError('weights', asWire(err));
  }
});

$('weights-file').addEventListener('change', async (e) => {
  const input = e.currentTarget as HTMLInputElement;
  const file = input.files?.[0];
  if (!file) return;
  $('weights-status').textContent = `Loading ${file.name}…`;
  try {
    const e = await call('importWeights', new Uint8Array(await file.arrayBuffer()), field('backend').value);
    state.evaluation = e;
    state.test = undefined;
    state.step = 0;
    $('weights-status').textContent = `Loaded ${file.name}: test accuracy ${(100 * e.accuracy).toFixed(2)}% on ${e.count} images (loss ${e.loss.toFixed(4)}).`;
    $('weights-status').dataset.accuracy = String(e.accuracy);
    showEvaluation(e, `Weights from ${file.name}`);
    showError('weights', undefined);
  } catch (err) {
    $('weights-status').textContent = `Could not load ${file.name}.`;
    showError('weights', asWire(err));
  }
  input.value = '';
  updateButtons();
});

buttons.evaluate.addEventListener('click', async () => {
  try {
    const e = await call('evaluate');
    state.evaluation = e;
    $('weights-status').textContent = `Current weights: test accuracy ${(100 * e.accuracy).toFixed(2)}% on ${e.count} images (loss ${e.loss.toFixed(4)}).`;
    $('weights-status').dataset.accuracy = String(e.accuracy);
    showEvaluation(e, 'Current weights');
  } catch (err) {
    showError('weights', asWire(err));
  }
});

// ---------- drawing ----------

const pad = drawingPad($<HTMLCanvasElement>('pad'), () => void predictDrawing());
$('clear').addEventListener('click', () => {
  pad.clear();
  ($<HTMLCanvasElement>('pad-preview').getContext('2d') as CanvasRenderingContext2D).clearRect(0, 0, 112, 112);
  $('draw-bars').replaceChildren();
  $('draw-result').textContent = '–';
  state.draw = undefined;
});

async function predictDrawing(): Promise<void> {
  const x = toMnist($<HTMLCanvasElement>('pad'));
  if (!x) return;
  drawGray($<HTMLCanvasElement>('pad-preview').getContext('2d')!, x, SIDE, 0, 0, 4);
  try {
    const probs = await call('predict', x);
    const prediction = probs.indexOf(Math.max(...probs));
    state.draw = { probs, prediction };
    probabilityBars($('draw-bars'), probs);
    $('draw-result').textContent = `${prediction} (${(100 * probs[prediction]!).toFixed(1)}%)`;
    $('draw-result').dataset.prediction = String(prediction);
    showError('draw', undefined);
  } catch (err) {
    $('draw-result').textContent = (err as Error).message;
  }
}

// ---------- start-up ----------

async function boot(): Promise<void> {
  buildForm();
  listenToForm();
  await applyPreset('default');
  renderCharts();
  const probe = await call('probe');
  state.probe = probe;
  if (probe.available) {
    $('adapter').textContent = probe.description;
    state.adapter = probe.description;
    field('backend').value = 'webgpu';
  } else {
    $('adapter').textContent = 'no WebGPU';
    $('no-webgpu-reason').textContent = probe.error?.message ?? '';
    $('no-webgpu').hidden = false;
    field('backend').value = 'cpu';
  }
  try {
    await afterDataChange(await call('loadMnist', mnistBase()));
  } catch (err) {
    $('data-status').textContent = 'MNIST could not be loaded; choose idx files below.';
    showError('data', asWire(err));
  }
  await call('setView', ...viewSettings());
  state.storedRun = await call('storedRun');
  state.ready = true;
  setPhase('idle');
}

boot().catch((err) => {
  showError('train', asWire(err));
  setPhase('failed', 'start-up');
});
