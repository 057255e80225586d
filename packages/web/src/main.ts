// The page: the form, the controls and the pictures. Training runs in the worker (worker.ts);
// the page only sends it calls (page/client.ts) and draws what it reports. Each panel is a module
// of page/ that touches its own part of index.html; everything the end-to-end tests check is
// kept on `window.__vat` (page/state.ts), so they read numbers, not pixels.
import { call, onWorkerEvent } from './page/client.js';
import { installControls } from './page/controls.js';
import { renderCharts } from './page/curves.js';
import { installData, loadMnist } from './page/data.js';
import { onEvent } from './page/events.js';
import { applyPreset, buildForm, installModelPicker } from './page/form.js';
import { setPhase } from './page/phase.js';
import { $, asWire, field, showError, state } from './page/state.js';
import { installView, viewSettings } from './page/view.js';
import { installWeights } from './page/weights.js';

onWorkerEvent(onEvent);

async function boot(): Promise<void> {
  buildForm();
  installControls();
  installData();
  installView();
  installWeights();
  await applyPreset('default');
  await installModelPicker();
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
    await loadMnist();
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
