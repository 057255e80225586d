// Start, pause, resume and stop, and what the page shows when a run ends.
import type { RunEnd, RunPhase } from '../protocol.js';
import { call } from './client.js';
import { renderCharts, scheduleCharts } from './curves.js';
import { readOptions } from './form.js';
import { refreshStoredRun, setPhase } from './phase.js';
import { $, asWire, buttons, field, formatSeconds, showError, state } from './state.js';
import { showEvaluation } from './view.js';

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

export function installControls(): void {
  buttons.start.addEventListener('click', () => {
    const options = readOptions();
    const before = state.phase as RunPhase;
    startedRun();
    setPhase('starting');
    void runToEnd(
      call('resolveOptions', options).then((r) => {
        state.valSize = r.loop.valSize;
        return call('start', options, ($('standardize') as HTMLInputElement).checked);
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
}
