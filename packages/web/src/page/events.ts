// What the page does with each event the worker pushes while it trains.
import type { WorkerEvent } from '../protocol.js';
import { scheduleCharts } from './curves.js';
import { setPhase, updateButtons } from './phase.js';
import { $, formatSeconds, showError, state } from './state.js';
import { renderView } from './view.js';

export function onEvent(e: WorkerEvent): void {
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
