// The VAT view (x, r_adv and x + r_adv with p(y|x), p(y|x + r_adv) and their KL), the sample
// grid of test images with their predictions, and the confusion matrix.
import type { EvalSummary, ViewUpdate } from '../protocol.js';
import { type Shape, drawConfusion, drawImage, drawSignedImage, probabilityBars } from './charts.js';
import { call } from './client.js';
import { $, asWire, showError, state } from './state.js';

let gridImages: { x: Float32Array; labels: number[]; shape: Shape } | undefined;
const GRID_COLS = 8;
const CELL = 58;

/** The test images the grid shows (the first ones of the loaded test set). */
export function setGridImages(images: { x: Float32Array; labels: number[]; shape: Shape }): void {
  gridImages = images;
  renderGrid(undefined);
}

function renderGrid(view?: ViewUpdate): void {
  const canvas = $<HTMLCanvasElement>('grid');
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!gridImages) return;
  const n = gridImages.labels.length;
  ctx.font = '12px system-ui, sans-serif';
  ctx.textAlign = 'center';
  const shape = gridImages.shape;
  const px = shape[0] * shape[1] * shape[2];
  // Each image scaled by a whole factor to fit its 56-pixel cell (2x for MNIST's 28x28).
  const scale = Math.max(1, Math.floor(56 / Math.max(shape[1], shape[2])));
  const [iw, ih] = [shape[2] * scale, shape[1] * scale];
  for (let i = 0; i < n; i++) {
    const x = (i % GRID_COLS) * CELL + 1;
    const y = Math.floor(i / GRID_COLS) * (CELL + 12) + 1;
    drawImage(ctx, gridImages.x.subarray(i * px, (i + 1) * px), shape, x + 1, y + 1, scale);
    const g = view?.grid[i];
    if (g) {
      const wrong = g.prediction !== g.label;
      ctx.strokeStyle = wrong ? '#d11' : '#ccc';
      ctx.lineWidth = wrong ? 3 : 1;
      ctx.strokeRect(x, y, iw + 2, ih + 2);
      ctx.fillStyle = wrong ? '#d11' : '#333';
      ctx.fillText(wrong ? `${g.prediction} (is ${g.label})` : String(g.prediction), x + iw / 2 + 1, y + 56 + 14);
    }
  }
}

/** The view's settings as the worker takes them: samples, refresh interval, live test images. */
export function viewSettings(): [number[], number, number] {
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

/** The view's controls: the sample indices, a click in the grid, the refresh settings. */
export function installView(): void {
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
  $('vat-indices').addEventListener('change', () => void applyView(true));
  $('refresh-every').addEventListener('change', () => void applyView(false));
  $('monitor-size').addEventListener('change', () => void applyView(false));
  $('refresh').addEventListener('click', () => void applyView(true));
}

export function renderView(view: ViewUpdate): void {
  const box = $('vat-view');
  box.replaceChildren();
  for (const s of view.samples) {
    const row = document.createElement('div');
    row.className = 'vat-row';
    row.dataset.index = String(s.index);
    row.dataset.norm = String(s.norm);
    row.dataset.kl = String(s.kl);
    const canvas = document.createElement('canvas');
    // MNIST's 28x28 at 3x; other sizes at the whole factor that gives about the same width.
    const scale = Math.max(1, Math.round(84 / Math.max(s.shape[1], s.shape[2])));
    const [w, h] = [s.shape[2] * scale, s.shape[1] * scale];
    canvas.width = 3 * w + 16;
    canvas.height = h + 16;
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    const xAdv = s.x.map((v, i) => v + s.rAdv[i]!);
    drawImage(ctx, s.x, s.shape, 0, 0, scale);
    // Colour images: r_adv as a colour map around mid-grey (each channel's push up or down).
    drawSignedImage(ctx, s.rAdv, s.shape, w + 8, 0, scale);
    drawImage(ctx, xAdv, s.shape, 2 * (w + 8), 0, scale);
    ctx.fillStyle = '#555';
    ctx.font = '11px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ['x', 'r_adv', 'x + r_adv'].forEach((t, k) => {
      ctx.fillText(t, k * (w + 8) + w / 2, h + 12);
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
  note.textContent = `At step ${view.step}; LDS of these samples (the trainer's vatView): ${view.lds.toExponential(3)}.`;
  box.append(note);
  renderGrid(view);
  if (state.phase !== 'done' || !state.test) {
    drawConfusion($<HTMLCanvasElement>('confusion'), view.monitor.confusion);
    $('confusion-caption').textContent =
      `The first ${view.monitor.count} test images at step ${view.step}: accuracy ${(100 * view.monitor.accuracy).toFixed(1)}%. Rows: true class; columns: prediction.`;
  }
}

/** The confusion matrix of a whole-test-set evaluation. */
export function showEvaluation(e: EvalSummary, where: string): void {
  drawConfusion($<HTMLCanvasElement>('confusion'), e.confusion);
  $('confusion-caption').textContent =
    `${where}: the whole test set (${e.count} images), accuracy ${(100 * e.accuracy).toFixed(2)}%. Rows: true class; columns: prediction.`;
}
