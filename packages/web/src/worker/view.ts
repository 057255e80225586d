// The VAT view and the live test figures, computed in the worker from the trainer's live weights.
import { all, gather } from '@vat/core';

import type { ViewUpdate } from '../protocol.js';
import { toWire } from '../protocol.js';
import { emit, exclusive, session } from './session.js';

/** Test images shown in the sample grid (the first ones of the monitor set). */
const GRID = 48;

/**
 * The VAT view and the live test figures, from one consistent set of weights: the trainer's own
 * `vatView` (r_adv, p(y|x), p(y|x + r_adv) and their KL on the live weights, dropout off, a fixed
 * seeded d) and `evaluate` on the monitor set. Runs inside `exclusive`.
 */
export async function refreshView(): Promise<void> {
  const { trainer: t, data } = session;
  if (!t || !data) return;
  const test = data.test;
  const classes = t.options.classes;
  const shape: [number, number, number] = [test.channels ?? 1, test.rows, test.cols];
  const px = shape[0] * shape[1] * shape[2];
  const indices = session.viewIndices.filter((i) => i < test.count);
  const view: ViewUpdate = {
    step: t.step,
    epochProgress: session.lastProgress.epochProgress,
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
      return { index, shape, label: v.y[s]!, x: v.x.slice(s * px, (s + 1) * px), rAdv, before: row(r.p), after: row(r.q), norm: Math.sqrt(sq), kl: r.kl[s]! };
    });
  }
  const n = Math.min(Math.max(session.monitorSize, GRID), test.count);
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

/** A refresh queued behind whatever the worker is doing; its failure is shown in the view panel. */
export function scheduleRefresh(): void {
  exclusive(refreshView).catch((err) => emit({ event: 'error', error: toWire(err), where: 'view' }));
}
