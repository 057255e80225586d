// The weights panel (download, load and evaluate a safetensors file) and the drawing pad, which
// classifies what is drawn with the current weights.
import { drawGray, probabilityBars } from './charts.js';
import { call } from './client.js';
import { SIDE, drawingPad, toMnist } from './draw.js';
import { updateButtons } from './phase.js';
import { $, asWire, buttons, field, showError, state } from './state.js';
import { showEvaluation } from './view.js';

async function download(): Promise<void> {
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
}

async function load(input: HTMLInputElement): Promise<void> {
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
}

async function evaluate(): Promise<void> {
  try {
    const e = await call('evaluate');
    state.evaluation = e;
    $('weights-status').textContent = `Current weights: test accuracy ${(100 * e.accuracy).toFixed(2)}% on ${e.count} images (loss ${e.loss.toFixed(4)}).`;
    $('weights-status').dataset.accuracy = String(e.accuracy);
    showEvaluation(e, 'Current weights');
  } catch (err) {
    showError('weights', asWire(err));
  }
}

async function predictDrawing(): Promise<void> {
  const x = toMnist($<HTMLCanvasElement>('pad'));
  if (!x || $('draw-card').classList.contains('disabled')) return;
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

export function installWeights(): void {
  buttons.download.addEventListener('click', () => void download());
  $('weights-file').addEventListener('change', (e) => void load(e.currentTarget as HTMLInputElement));
  buttons.evaluate.addEventListener('click', () => void evaluate());

  const pad = drawingPad($<HTMLCanvasElement>('pad'), () => void predictDrawing());
  $('clear').addEventListener('click', () => {
    pad.clear();
    ($<HTMLCanvasElement>('pad-preview').getContext('2d') as CanvasRenderingContext2D).clearRect(0, 0, 112, 112);
    $('draw-bars').replaceChildren();
    $('draw-result').textContent = '–';
    state.draw = undefined;
  });
}
