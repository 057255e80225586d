// The training worker: owns the data, the Trainer and the run, so the page stays responsive
// while WebGPU (or the CPU backend) trains. The page calls the methods of `api` through
// postMessage (protocol.ts) and receives step, epoch and view events.
import {
  type ImageSet,
  InvalidConfigError,
  InvalidInputError,
  type RunOptions,
  Rng,
  Trainer,
  all,
  flatWeights,
  gather,
  inspect,
  modelConfig,
  parseImageSet,
  probeWebGpu,
  resolveRunOptions,
  train,
} from '@vat/core';

import { IdbCheckpointStore } from './idb.js';
import type { DataSummary, EvalSummary, Reply, Request, RunEnd, StoredRun, ViewUpdate, WorkerApi, WorkerEvent } from './protocol.js';
import { toWire } from './protocol.js';

const scope = self as unknown as {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<Request>) => void) | null;
};
const emit = (e: WorkerEvent) => scope.postMessage(e);

/** Test images shown in the sample grid (the first ones of the monitor set). */
const GRID = 48;
const MNIST_FILES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];

let mnist: { train: ImageSet; test: ImageSet } | undefined;
let data: { train: ImageSet; test: ImageSet; source: string } | undefined;
let trainer: Trainer | undefined;
let raw: Raw | undefined;
let running: { controller: AbortController; stopping: boolean } | undefined;
const store = new IdbCheckpointStore();
let viewIndices = [0, 1, 2, 3];
let refreshEvery = 20;
/** Test images whose predictions make the live accuracy and confusion matrix between epochs. */
let monitorSize = 500;
let lastProgress = { step: 0, epoch: 0, epochProgress: 0 };

// Every call into the wasm handle goes through one queue. The run's own calls (trainStep,
// evaluate, checkpoints) and the page's (predict for the drawing pad, export, the VAT view)
// would otherwise overlap while a WebGPU read-back is awaited, and wasm-bindgen refuses a
// second borrow of the same Rust object.
let tail: Promise<unknown> = Promise.resolve();
function exclusive<T>(f: () => Promise<T>): Promise<T> {
  const r = tail.then(f);
  tail = r.catch(() => undefined);
  return r;
}

const LOCKED = ['trainStep', 'evaluate', 'predict', 'exportWeights', 'importWeights', 'exportCheckpoint', 'importCheckpoint'] as const;
type Raw = Pick<Trainer, (typeof LOCKED)[number]>;

/** Routes the trainer's async methods through `exclusive`; returns the unqueued originals. */
function guard(t: Trainer): Raw {
  const originals: Record<string, unknown> = {};
  const methods = t as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  for (const m of LOCKED) {
    const original = methods[m]!.bind(t);
    originals[m] = original;
    methods[m] = (...a: unknown[]) => exclusive(() => original(...a));
  }
  return originals as unknown as Raw;
}

async function setTrainer(t: Trainer): Promise<void> {
  await exclusive(async () => {
    trainer?.dispose();
    trainer = t;
    raw = guard(t);
  });
  emit({ event: 'adapter', description: t.adapter.description, backend: t.backend, reason: t.adapter.reason });
}

function need<T>(value: T | undefined, message: string): T {
  if (value === undefined) throw new InvalidConfigError(message);
  return value;
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new InvalidInputError(`could not load ${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

function checkShape(set: ImageSet, what: string): ImageSet {
  if (set.rows !== 28 || set.cols !== 28) {
    throw new InvalidInputError(`${what}: images are ${set.rows}x${set.cols}; this demo's model and drawing pad take 28x28 images`);
  }
  return set;
}

function summary(): DataSummary {
  const d = need(data, 'no data is loaded');
  const s = (set: ImageSet, source: string) => ({ count: set.count, rows: set.rows, cols: set.cols, source });
  const [trainSource, testSource] = d.source.split(' | ');
  return { train: s(d.train, trainSource!), test: s(d.test, testSource ?? trainSource!) };
}

function notRunning(what: string): void {
  if (running) throw new InvalidConfigError(`pause or stop the run before you ${what}`);
}

function evalSummary(e: { loss: number; accuracy: number; count: number; confusion: Uint32Array }, what: string): EvalSummary {
  return { loss: e.loss, accuracy: e.accuracy, count: e.count, confusion: Array.from(e.confusion), what };
}

/** Standard normal draws (Box-Muller) from the project's seeded generator: the VAT view's d. */
function gaussian(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(rng.next(), 1e-12);
    const v = rng.next();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

function klDivergence(p: ArrayLike<number>, q: ArrayLike<number>): number {
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i]! > 0) kl += p[i]! * (Math.log(p[i]!) - Math.log(Math.max(q[i]!, 1e-30)));
  }
  return kl;
}

/**
 * The VAT view and the live test figures, from one consistent set of weights: r_adv from the
 * core's `inspect` on the current weights (dropout off, a fixed seeded d), p(y|x) and
 * p(y|x + r_adv) from the trainer, and predictions on the monitor set. Runs inside `exclusive`.
 *
 * `inspect` runs on the CPU backend whatever the run's backend: for four images it takes
 * about 0.2 s there, against 3-5 s on SwiftShader's WebGPU (measured in headless Chromium on
 * 2 cores), where it would also hold up training. Both backends give the same r_adv to float
 * precision (packages/reference checks them against each other).
 */
async function refreshView(): Promise<void> {
  if (!trainer || !raw || !data) return;
  const t = trainer;
  const test = data.test;
  const cfg = t.config as Record<string, unknown> & { model: Record<string, number | boolean> };
  const classes = Number(cfg.model.classes);
  const px = test.rows * test.cols;
  const indices = viewIndices.filter((i) => i < test.count);
  const view: ViewUpdate = {
    step: t.step,
    epochProgress: lastProgress.epochProgress,
    eps: Number(cfg.eps),
    xi: Number(cfg.xi),
    lds: 0,
    samples: [],
    monitor: { count: 0, accuracy: 0, confusion: [] },
    grid: [],
  };
  if (indices.length) {
    const weights = flatWeights(await raw.exportWeights());
    const v = gather(test, indices);
    // The same d at every refresh, so the pictures change with the model, not with the noise.
    const d = gaussian(Rng.derive(Number(cfg.seed ?? 42), 'vat-view'), v.x.length);
    const options = {
      ...cfg.model,
      dropout: false,
      vat: true,
      entmin: false,
      eps: view.eps,
      xi: view.xi,
      powerIterations: Number(cfg.powerIterations),
      alpha: 1,
      seed: Number(cfg.seed ?? 42),
    };
    const r = await inspect('cpu', options, { weights, x: v.x, y: v.y, d, lr: 1 });
    const xAdv = new Float32Array(v.x.length);
    for (let i = 0; i < xAdv.length; i++) xAdv[i] = v.x[i]! + r.rAdv[i]!;
    const before = await raw.predict(v.x);
    const after = await raw.predict(xAdv);
    view.lds = r.lds;
    view.samples = indices.map((index, s) => {
      const rAdv = r.rAdv.slice(s * px, (s + 1) * px);
      let sq = 0;
      for (const a of rAdv) sq += a * a;
      const p = Array.from(before.subarray(s * classes, (s + 1) * classes));
      const q = Array.from(after.subarray(s * classes, (s + 1) * classes));
      return { index, label: v.y[s]!, x: v.x.slice(s * px, (s + 1) * px), rAdv, before: p, after: q, norm: Math.sqrt(sq), kl: klDivergence(p, q) };
    });
  }
  const n = Math.min(Math.max(monitorSize, GRID), test.count);
  const m = gather(test, all(test).indices.subarray(0, n));
  const probs = await raw.predict(m.x);
  const confusion = new Array<number>(classes * classes).fill(0);
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const row = probs.subarray(i * classes, (i + 1) * classes);
    let best = 0;
    for (let c = 1; c < classes; c++) if (row[c]! > row[best]!) best = c;
    confusion[m.y[i]! * classes + best]! += 1;
    if (best === m.y[i]) correct += 1;
    if (i < GRID) view.grid.push({ label: m.y[i]!, prediction: best, confidence: row[best]! });
  }
  view.monitor = { count: n, accuracy: correct / n, confusion };
  emit({ event: 'view', view });
}

function scheduleRefresh(): void {
  exclusive(refreshView).catch((err) => emit({ event: 'error', error: toWire(err), where: 'view' }));
}

async function run(options: RunOptions, resume: boolean, dataSource: string): Promise<RunEnd> {
  const t = need(trainer, 'no trainer');
  const d = need(data, 'load data first');
  const r = { controller: new AbortController(), stopping: false };
  running = r;
  store.enabled = true;
  emit({ event: 'phase', phase: 'training' });
  try {
    const result = await train(
      t,
      d,
      options,
      {
        onStep: (p) => {
          lastProgress = { step: p.step, epoch: p.epoch, epochProgress: p.epoch + (p.batch + 1) / p.batches };
          emit({
            event: 'step',
            step: p.step,
            epoch: p.epoch,
            epochs: p.epochs,
            batch: p.batch,
            batches: p.batches,
            stats: p.stats,
            imagesPerSecond: p.imagesPerSecond,
            etaSeconds: p.etaSeconds,
            runningLoss: p.runningLoss,
          });
          if (refreshEvery > 0 && p.step % refreshEvery === 0 && p.batch + 1 < p.batches) scheduleRefresh();
        },
        onEpoch: async (e, history) => {
          emit({ event: 'epoch', stats: e, history });
          await exclusive(refreshView);
        },
        onCheckpoint: async (step) => {
          // Written before the event goes out (and before a pause is announced), so the page
          // never shows "paused" while IndexedDB still holds an older step.
          let stored: StoredRun | undefined;
          if (!r.stopping) {
            const meta: StoredRun = { options, dataSource, step, epoch: lastProgress.epoch, savedAt: new Date().toISOString() };
            try {
              await store.saveMeta(meta);
              stored = meta;
            } catch (err) {
              emit({ event: 'error', error: toWire(err), where: 'checkpoint' });
            }
          }
          emit({ event: 'checkpoint', step, stored });
        },
      },
      { store, resume, signal: r.controller.signal },
    );
    // The page sets the final phase from what this returns (main.ts, runToEnd).
    if (r.stopping) {
      await store.clear();
      return { interrupted: true, stopped: true, step: result.step, seconds: result.seconds };
    }
    if (result.interrupted) {
      return { interrupted: true, stopped: false, step: result.step, seconds: result.seconds };
    }
    // A finished run has nothing left to resume.
    await store.clear();
    return { interrupted: false, stopped: false, step: result.step, seconds: result.seconds, test: evalSummary(result.test!, 'run') };
  } catch (err) {
    emit({ event: 'phase', phase: 'failed', detail: `${(err as Error).name}: ${(err as Error).message}` });
    throw err;
  } finally {
    running = undefined;
  }
}

const api: WorkerApi = {
  async probe() {
    try {
      const report = await probeWebGpu();
      return { available: true, description: report.description, isFallbackAdapter: report.isFallbackAdapter };
    } catch (err) {
      return { available: false, description: 'no WebGPU', error: toWire(err) };
    }
  },

  async loadMnist(baseUrl) {
    notRunning('change the data');
    if (!mnist) {
      const [ti, tl, xi, xl] = await Promise.all(MNIST_FILES.map((f) => fetchBytes(new URL(f, baseUrl).href)));
      mnist = { train: parseImageSet(ti!, tl!, 'MNIST train'), test: parseImageSet(xi!, xl!, 'MNIST test') };
    }
    data = { ...mnist, source: 'MNIST' };
    return summary();
  },

  async loadFiles(files) {
    notRunning('change the data');
    const pair = async (images: File | undefined, labels: File | undefined, what: string): Promise<[ImageSet, string] | undefined> => {
      if (!images && !labels) return undefined;
      if (!images || !labels) throw new InvalidInputError(`give both the images and the labels file of the ${what} set (or neither, to keep MNIST's)`);
      const set = parseImageSet(
        new Uint8Array(await images.arrayBuffer()),
        new Uint8Array(await labels.arrayBuffer()),
        `${what} set (${images.name}, ${labels.name})`,
      );
      return [checkShape(set, `${what} set`), images.name];
    };
    const tr = await pair(files.trainImages, files.trainLabels, 'training');
    const te = await pair(files.testImages, files.testLabels, 'test');
    if (!tr && !te) throw new InvalidInputError('choose idx files first');
    if ((!tr || !te) && !mnist) throw new InvalidConfigError('MNIST is not loaded yet; give all four files');
    data = {
      train: tr?.[0] ?? mnist!.train,
      test: te?.[0] ?? mnist!.test,
      source: `${tr ? tr[1] : 'MNIST'} | ${te ? te[1] : 'MNIST'}`,
    };
    return summary();
  },

  async start(options) {
    notRunning('start another');
    const dataSource = need(data, 'load data first').source;
    const o = resolveRunOptions(options);
    await store.clear();
    await setTrainer(await Trainer.create(o));
    lastProgress = { step: 0, epoch: 0, epochProgress: 0 };
    await store.saveMeta({ options: o, dataSource, step: 0, epoch: 0, savedAt: new Date().toISOString() });
    return run(o, false, dataSource);
  },

  async resume(backend) {
    notRunning('resume');
    const meta = need(await store.loadMeta(), 'there is no saved run to resume');
    const d = need(data, 'load data first');
    if (meta.dataSource !== d.source) {
      throw new InvalidConfigError(`the saved run trained on ${meta.dataSource.replace(' | ', ' and ')}; load the same data, then resume`);
    }
    const options = backend ? { ...meta.options, backend: backend as RunOptions['backend'] } : meta.options;
    // A fresh trainer: the checkpoint restores weights, optimiser state, step and RNG state.
    await setTrainer(await Trainer.create(options));
    lastProgress = { step: meta.step, epoch: meta.epoch, epochProgress: meta.epoch };
    return run(options, true, meta.dataSource);
  },

  async pause() {
    need(running, 'no run is going').controller.abort();
    emit({ event: 'phase', phase: 'pausing' });
  },

  async stop() {
    if (running) {
      running.stopping = true;
      store.enabled = false;
      running.controller.abort();
      emit({ event: 'phase', phase: 'stopping' });
    } else {
      await store.clear();
      emit({ event: 'phase', phase: 'stopped' });
    }
  },

  async storedRun() {
    const [meta, bytes] = await Promise.all([store.loadMeta(), store.load()]);
    return meta && bytes ? meta : null;
  },

  async discardStoredRun() {
    notRunning('discard it');
    await store.clear();
  },

  async predict(x) {
    const t = need(trainer, 'train a model or load weights first');
    return Array.from(await t.predict(x));
  },

  async exportWeights() {
    return need(trainer, 'train a model or load weights first').exportWeights();
  },

  async importWeights(bytes, backend) {
    notRunning('load weights');
    const d = need(data, 'load data first');
    const config = modelConfig(bytes, 'the uploaded weights file');
    const t = await Trainer.create({ ...config, backend: backend as RunOptions['backend'] });
    try {
      await t.importWeights(bytes);
    } catch (err) {
      t.dispose();
      throw err;
    }
    await setTrainer(t);
    const x = gather(d.test, all(d.test).indices);
    const e = evalSummary(await t.evaluate(x.x, x.y), 'imported weights');
    await exclusive(refreshView);
    return e;
  },

  async evaluate() {
    const t = need(trainer, 'train a model or load weights first');
    const d = need(data, 'load data first');
    const x = gather(d.test, all(d.test).indices);
    return evalSummary(await t.evaluate(x.x, x.y), 'current weights');
  },

  async setView(indices, every, monitor) {
    const d = need(data, 'load data first');
    const bad = indices.find((i) => !(Number.isInteger(i) && i >= 0 && i < d.test.count));
    if (bad !== undefined) throw new InvalidConfigError(`test sample ${bad} does not exist; pick indices in 0..${d.test.count - 1}`);
    if (!(Number.isInteger(every) && every >= 0)) throw new InvalidConfigError(`refresh every must be an integer >= 0, got ${every}`);
    if (!(Number.isInteger(monitor) && monitor >= 0)) throw new InvalidConfigError(`live test images must be an integer >= 0, got ${monitor}`);
    viewIndices = indices;
    refreshEvery = every;
    monitorSize = monitor;
  },

  async refresh() {
    await exclusive(refreshView);
  },

  async testImages(indices) {
    const d = need(data, 'load data first');
    const g = gather(
      d.test,
      indices.filter((i) => i < d.test.count),
    );
    return { x: g.x, labels: Array.from(g.y) };
  },
};

scope.onmessage = async (e: MessageEvent<Request>) => {
  const { id, method, args } = e.data;
  let reply: Reply;
  try {
    const value = await (api[method] as (...a: unknown[]) => Promise<unknown>)(...args);
    reply = { id, ok: true, value };
  } catch (err) {
    reply = { id, ok: false, error: toWire(err) };
  }
  scope.postMessage(reply);
};
