// The VAT view (x, r_adv and x + r_adv with p(y|x), p(y|x + r_adv) and their KL), the sample
// grid of test images with their predictions, and the confusion matrix.
import type { EvalSummary, ViewUpdate } from '../protocol.js';
import { drawConfusion, drawGray, drawSigned, probabilityBars } from './charts.js';
import { call } from './client.js';
import { SIDE } from './draw.js';
import { $, asWire, showError, state } from './state.js';

let gridImages: { x: Float32Array; labels: number[] } | undefined;
const GRID_COLS = 8;
const CELL = 58;

/** The test images the grid shows (the first ones of the loaded test set). */
export function setGridImages(images: { x: Float32Array; labels: number[] }): void {
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
  const px = SIDE * SIDE;
  for (let i = 0; i < n; i++) {
    const x = (i % GRID_COLS) * CELL + 1;
    const y = Math.floor(i / GRID_COLS) * (CELL + 12) + 1;
    drawGray(ctx, gridImages.x.subarray(i * px, (i + 1) * px), SIDE, x + 1, y + 1, 2);
    const g = view?.grid[i];
    if (g) {
      const wrong = g.prediction !== g.label;
      ctx.strokeStyle = wrong ? '#d11' : '#ccc';
      ctx.lineWidth = wrong ? 3 : 1;
      ctx.strokeRect(x, y, 2 * SIDE + 2, 2 * SIDE + 2);
      ctx.fillStyle = wrong ? '#d11' : '#333';
      ctx.fillText(wrong ? `${g.prediction} (is ${g.label})` : String(g.prediction), x + SIDE + 1, y + 2 * SIDE + 14);
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
  const scale = 3;
  for (const s of view.samples) {
    const row = document.createElement('div');
    row.className = 'vat-row';
    row.dataset.index = String(s.index);
    row.dataset.norm = String(s.norm);
    row.dataset.kl = String(s.kl);
    const canvas = document.createElement('canvas');
    const w = SIDE * scale;
    canvas.width = 3 * w + 16;
    canvas.height = w + 16;
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    const xAdv = s.x.map((v, i) => v + s.rAdv[i]!);
    drawGray(ctx, s.x, SIDE, 0, 0, scale);
    drawSigned(ctx, s.rAdv, SIDE, w + 8, 0, scale);
    drawGray(ctx, xAdv, SIDE, 2 * (w + 8), 0, scale);
    ctx.fillStyle = '#555';
    ctx.font = '11px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ['x', 'r_adv', 'x + r_adv'].forEach((t, k) => {
      ctx.fillText(t, k * (w + 8) + w / 2, w + 12);
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
      `The first ${view.monitor.count} test images at step ${view.step}: accuracy ${(100 * view.monitor.accuracy).toFixed(1)}%. Rows: true digit; columns: prediction.`;
  }
}

/** The confusion matrix of a whole-test-set evaluation. */
export function showEvaluation(e: EvalSummary, where: string): void {
  drawConfusion($<HTMLCanvasElement>('confusion'), e.confusion);
  $('confusion-caption').textContent =
    `${where}: the whole test set (${e.count} images), accuracy ${(100 * e.accuracy).toFixed(2)}%. Rows: true digit; columns: prediction.`;
}
