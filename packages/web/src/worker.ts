// The training worker: owns the data, the Trainer and the run, so the page stays responsive
// while WebGPU (or the CPU backend) trains. The page calls the methods of `api` through
// postMessage (protocol.ts) and receives step, epoch and view events.
import {
  type ImageSet,
  InvalidConfigError,
  InvalidInputError,
  type RunOptions,
  Trainer,
  all,
  gather,
  modelConfig,
  parseImageSet,
  probeWebGpu,
  type LoopOptions,
  type ResolvedLoopOptions,
  resolveOptions,
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
let running: { controller: AbortController; stopping: boolean } | undefined;
const store = new IdbCheckpointStore();
let viewIndices = [0, 1, 2, 3];
let refreshEvery = 20;
/** Test images whose predictions make the live accuracy and confusion matrix between epochs. */
let monitorSize = 500;
let lastProgress = { step: 0, epoch: 0, epochProgress: 0 };

// The Trainer queues its own calls into the core; this queue orders the worker's own sequences
// (a view refresh against swapping in another trainer).
let tail: Promise<unknown> = Promise.resolve();
function exclusive<T>(f: () => Promise<T>): Promise<T> {
  const r = tail.then(f);
  tail = r.catch(() => undefined);
  return r;
}

async function setTrainer(t: Trainer): Promise<void> {
  await exclusive(async () => {
    trainer?.dispose();
    trainer = t;
  });
  emit({ event: 'adapter', description: t.adapter.description, backend: t.backend, reason: t.adapter.reason });
}

function need<T>(value: T | undefined, message: string): T {
  if (value === undefined) throw new InvalidConfigError(message);
  return value;
}

/**
 * A gzipped file, inflated with the browser's DecompressionStream. A server may instead send it
 * with Content-Encoding: gzip (vite's preview, many static hosts), and then the browser has
 * inflated it already: the gzip magic decides.
 */
async function fetchGzip(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new InvalidInputError(`could not fetch ${url} (HTTP ${r.status})`);
  return inflated(new Uint8Array(await r.arrayBuffer()), url);
}

/** `bytes` inflated when they are gzip (idx files are often kept as .gz), else as they are. */
async function inflated(bytes: Uint8Array, name: string): Promise<Uint8Array> {
  if (!(bytes[0] === 0x1f && bytes[1] === 0x8b)) return bytes;
  try {
    return new Uint8Array(await new Response(new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('gzip'))).arrayBuffer());
  } catch (e) {
    throw new InvalidInputError(`${name} is gzip-compressed but does not inflate: ${(e as Error).message}`);
  }
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
/**
 * The VAT view and the live test figures, from one consistent set of weights: the trainer's own
 * `vatView` (r_adv, p(y|x), p(y|x + r_adv) and their KL on the live weights, dropout off, a fixed
 * seeded d) and `evaluate` on the monitor set. Runs inside `exclusive`.
 */
async function refreshView(): Promise<void> {
  if (!trainer || !data) return;
  const t = trainer;
  const test = data.test;
  const classes = t.options.classes;
  const px = test.rows * test.cols;
  const indices = viewIndices.filter((i) => i < test.count);
  const view: ViewUpdate = {
    step: t.step,
    epochProgress: lastProgress.epochProgress,
    eps: t.options.eps,
    xi: t.options.xi,
    lds: 0,
    samples: [],
    monitor: { count: 0, accuracy: 0, confusion: [] },
    grid: [],
  };
  if (indices.length) {
    const v = gather(test, indices);
    // The same d at every refresh, so the pictures change with the model, not with the noise.
    const r = await t.vatView(v.x, t.options.seed);
    view.lds = r.kl.reduce((a, b) => a + b, 0) / r.kl.length;
    view.samples = indices.map((index, s) => {
      const rAdv = r.rAdv.slice(s * px, (s + 1) * px);
      let sq = 0;
      for (const a of rAdv) sq += a * a;
      const row = (a: Float32Array) => Array.from(a.subarray(s * classes, (s + 1) * classes));
      return { index, label: v.y[s]!, x: v.x.slice(s * px, (s + 1) * px), rAdv, before: row(r.p), after: row(r.q), norm: Math.sqrt(sq), kl: r.kl[s]! };
    });
  }
  const n = Math.min(Math.max(monitorSize, GRID), test.count);
  const m = gather(test, all(test).indices.subarray(0, n));
  const e = await t.evaluate(m.x, m.y);
  const g = gather(test, all(test).indices.subarray(0, Math.min(GRID, n)));
  const probs = await t.predict(g.x);
  for (let i = 0; i < g.y.length; i++) {
    const prediction = e.predicted[i]!;
    view.grid.push({ label: g.y[i]!, prediction, confidence: probs[i * classes + prediction]! });
  }
  view.monitor = { count: e.count, accuracy: e.accuracy, confusion: Array.from(e.confusion) };
  emit({ event: 'view', view });
}

function scheduleRefresh(): void {
  exclusive(refreshView).catch((err) => emit({ event: 'error', error: toWire(err), where: 'view' }));
}

async function run(loop: LoopOptions, resume: boolean, dataSource: string): Promise<RunEnd> {
  const t = need(trainer, 'no trainer');
  const d = need(data, 'load data first');
  const r = { controller: new AbortController(), stopping: false };
  running = r;
  store.enabled = true;
  emit({ event: 'phase', phase: 'training' });
  try {
    let options: ResolvedLoopOptions | undefined;
    const result = await train(
      t,
      d,
      loop,
      {
        onStart: (o) => {
          options = o;
        },
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
            const o = options!;
            const meta: StoredRun = { epochs: o.epochs, valSize: o.valSize, dataSource, step, epoch: lastProgress.epoch, savedAt: new Date().toISOString() };
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
      // Fetched gzipped (11 MB instead of 55 MB) and inflated here, as the browser streams it in.
      const [ti, tl, xi, xl] = await Promise.all(MNIST_FILES.map((f) => fetchGzip(new URL(`${f}.gz`, baseUrl).href)));
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
        await inflated(new Uint8Array(await images.arrayBuffer()), images.name),
        await inflated(new Uint8Array(await labels.arrayBuffer()), labels.name),
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

  async resolveOptions(options) {
    return resolveOptions(options);
  },

  async start(options) {
    notRunning('start another');
    const dataSource = need(data, 'load data first').source;
    const o = await resolveOptions(options);
    await store.clear();
    await setTrainer(await Trainer.create(o.trainer));
    lastProgress = { step: 0, epoch: 0, epochProgress: 0 };
    await store.saveMeta({ epochs: o.loop.epochs, valSize: o.loop.valSize, dataSource, step: 0, epoch: 0, savedAt: new Date().toISOString() });
    return run(o.loop, false, dataSource);
  },

  async resume(backend) {
    notRunning('resume');
    const meta = need(await store.loadMeta(), 'there is no saved run to resume');
    const d = need(data, 'load data first');
    if (meta.dataSource !== d.source) {
      throw new InvalidConfigError(`the saved run trained on ${meta.dataSource.replace(' | ', ' and ')}; load the same data, then resume`);
    }
    const bytes = need(await store.load(), 'the saved run has no checkpoint');
    // The checkpoint alone: its settings, weights, optimiser state, RNG state and loop state.
    await setTrainer(await Trainer.fromCheckpoint(bytes, { backend: backend as RunOptions['backend'] }));
    lastProgress = { step: meta.step, epoch: meta.epoch, epochProgress: meta.epoch };
    return run({}, true, meta.dataSource);
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
