// The training worker: owns the data, the Trainer and the run, so the page stays responsive
// while WebGPU (or the CPU backend) trains. The page calls the methods of `api` through
// postMessage (protocol.ts) and receives step, epoch and view events. The parts live in worker/:
// session.ts (what is held between calls), data.ts, run.ts, view.ts, idb.ts (the checkpoints).
import { InvalidConfigError, type RunOptions, Trainer, all, channelStats, gather, modelConfig, modelPresets, probeWebGpu, resolveOptions } from '@vat/core';

import type { Reply, Request, StoredRun, WorkerApi } from './protocol.js';
import { toWire } from './protocol.js';
import { loadDataset, loadFiles, loadMnist } from './worker/data.js';
import { evalSummary, run } from './worker/run.js';
import { emit, exclusive, need, notRunning, session, setTrainer } from './worker/session.js';
import { refreshView } from './worker/view.js';

const store = session.store;
const newMeta = (m: Omit<StoredRun, 'savedAt'>): StoredRun => ({ ...m, savedAt: new Date().toISOString() });

const api: WorkerApi = {
  async probe() {
    try {
      const report = await probeWebGpu();
      return { available: true, description: report.description, isFallbackAdapter: report.isFallbackAdapter };
    } catch (err) {
      return { available: false, description: 'no WebGPU', error: toWire(err) };
    }
  },

  loadMnist,
  loadFiles,
  loadDataset,

  async resolveOptions(options) {
    return resolveOptions(options);
  },

  modelPresets,

  async start(options, standardize) {
    notRunning('start another');
    const data = need(session.data, 'load data first');
    const dataSource = data.source;
    // The model is built for the data: its image shape and its classes (the largest label + 1).
    let top = 0;
    for (const set of [data.train, data.test]) for (const l of set.labels) top = Math.max(top, l);
    const shaped = {
      ...options,
      inputShape: [data.train.channels ?? 1, data.train.rows, data.train.cols] as [number, number, number],
      classes: Math.max(2, top + 1),
      ...(standardize ? { normalization: channelStats(data.train) } : {}),
    };
    const o = await resolveOptions(shaped);
    await store.clear();
    await setTrainer(await Trainer.create(o.trainer));
    session.lastProgress = { step: 0, epoch: 0, epochProgress: 0 };
    await store.saveMeta(newMeta({ epochs: o.loop.epochs, valSize: o.loop.valSize, dataSource, step: 0, epoch: 0 }));
    return run(o.loop, false, dataSource);
  },

  async resume(backend) {
    notRunning('resume');
    const meta = need(await store.loadMeta(), 'there is no saved run to resume');
    const d = need(session.data, 'load data first');
    if (meta.dataSource !== d.source) {
      throw new InvalidConfigError(`the saved run trained on ${meta.dataSource.replace(' | ', ' and ')}; load the same data, then resume`);
    }
    const bytes = need(await store.load(), 'the saved run has no checkpoint');
    // The checkpoint alone: its settings, weights, optimiser state, RNG state and loop state.
    await setTrainer(await Trainer.fromCheckpoint(bytes, { backend: backend as RunOptions['backend'] }));
    session.lastProgress = { step: meta.step, epoch: meta.epoch, epochProgress: meta.epoch };
    return run({}, true, meta.dataSource);
  },

  async pause() {
    need(session.running, 'no run is going').controller.abort();
    emit({ event: 'phase', phase: 'pausing' });
  },

  async stop() {
    const running = session.running;
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
    const t = need(session.trainer, 'train a model or load weights first');
    return Array.from(await t.predict(x));
  },

  async exportWeights() {
    return need(session.trainer, 'train a model or load weights first').exportWeights();
  },

  async importWeights(bytes, backend) {
    notRunning('load weights');
    const d = need(session.data, 'load data first');
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
    const t = need(session.trainer, 'train a model or load weights first');
    const d = need(session.data, 'load data first');
    const x = gather(d.test, all(d.test).indices);
    return evalSummary(await t.evaluate(x.x, x.y), 'current weights');
  },

  async setView(indices, every, monitor) {
    const d = need(session.data, 'load data first');
    const bad = indices.find((i) => !(Number.isInteger(i) && i >= 0 && i < d.test.count));
    if (bad !== undefined) throw new InvalidConfigError(`test sample ${bad} does not exist; pick indices in 0..${d.test.count - 1}`);
    if (!(Number.isInteger(every) && every >= 0)) throw new InvalidConfigError(`refresh every must be an integer >= 0, got ${every}`);
    if (!(Number.isInteger(monitor) && monitor >= 0)) throw new InvalidConfigError(`live test images must be an integer >= 0, got ${monitor}`);
    session.viewIndices = indices;
    session.refreshEvery = every;
    session.monitorSize = monitor;
  },

  async refresh() {
    await exclusive(refreshView);
  },

  async testImages(indices) {
    const d = need(session.data, 'load data first');
    const g = gather(
      d.test,
      indices.filter((i) => i < d.test.count),
    );
    return { x: g.x, labels: Array.from(g.y) };
  },
};

const scope = self as unknown as { postMessage(message: unknown): void; onmessage: ((e: MessageEvent<Request>) => void) | null };
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
