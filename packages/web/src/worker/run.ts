// One training run (a start or a resume) with @vat/core's train(): progress events to the page,
// view refreshes, and checkpoints into IndexedDB.
import { type LoopOptions, type ResolvedLoopOptions, train } from '@vat/core';

import type { RunEnd, StoredRun } from '../protocol.js';
import { toWire } from '../protocol.js';
import { emit, exclusive, need, session } from './session.js';
import { refreshView, scheduleRefresh } from './view.js';

export function evalSummary(e: { loss: number; accuracy: number; count: number; confusion: Uint32Array }, what: string) {
  return { loss: e.loss, accuracy: e.accuracy, count: e.count, confusion: Array.from(e.confusion), what };
}

export async function run(loop: LoopOptions, resume: boolean, dataSource: string): Promise<RunEnd> {
  const t = need(session.trainer, 'no trainer');
  const d = need(session.data, 'load data first');
  const store = session.store;
  const r = { controller: new AbortController(), stopping: false };
  session.running = r;
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
          session.lastProgress = { step: p.step, epoch: p.epoch, epochProgress: p.epoch + (p.batch + 1) / p.batches };
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
          if (session.refreshEvery > 0 && p.step % session.refreshEvery === 0 && p.batch + 1 < p.batches) scheduleRefresh();
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
            const meta: StoredRun = {
              epochs: o.epochs,
              valSize: o.valSize,
              dataSource,
              step,
              epoch: session.lastProgress.epoch,
              savedAt: new Date().toISOString(),
            };
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
    // The page sets the final phase from what this returns (page/controls.ts, runToEnd).
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
    session.running = undefined;
  }
}
