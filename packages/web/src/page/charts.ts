// Small SVG and 2D-canvas pictures: line charts, digit images, r_adv heat maps, the confusion
// matrix and probability bars. SVG and 2D canvas (not WebGPU canvases) so that screenshots of the
// page, headless ones included, show them.

const SVG = 'http://www.w3.org/2000/svg';

export interface Series {
  name: string;
  color: string;
  points: [number, number][];
  /** Draw dots at the points (sparse series such as per-epoch values). */
  dots?: boolean;
}

export interface ChartOptions {
  xLabel: string;
  yLabel: string;
  /** Fixed y range; default: the data's, from 0. */
  yMin?: number;
  yMax?: number;
  /** Fixed x range start; default: the data's. */
  xMin?: number;
}

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Round numbers for axis ticks (1, 2, 5 times a power of ten). */
function ticks(lo: number, hi: number, count = 5): number[] {
  const span = hi - lo || 1;
  const raw = span / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => span / s <= count) ?? 10 * pow;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Number(v.toPrecision(6)));
  return out;
}

const fmt = (v: number) => (Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v)) : v.toPrecision(2).replace(/\.?0+$/, ''));

/** Draws the series into `svg` (replacing its contents), with axes, ticks and a legend. */
export function lineChart(svg: SVGSVGElement, series: Series[], o: ChartOptions): void {
  const W = 460;
  const H = 220;
  const m = { l: 46, r: 12, t: 24, b: 34 };
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.replaceChildren();
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const x0 = o.xMin ?? (xs.length ? Math.min(...xs) : 0);
  const x1 = Math.max(xs.length ? Math.max(...xs) : 1, x0 + 1e-9);
  const y0 = o.yMin ?? Math.min(0, ...ys);
  const y1 = o.yMax ?? Math.max(y0 + 1e-9, ...(ys.length ? ys : [1]));
  const px = (x: number) => m.l + ((x - x0) / (x1 - x0 || 1)) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - ((y - y0) / (y1 - y0 || 1)) * (H - m.t - m.b);
  const axis = el('g', { class: 'axis' });
  for (const t of ticks(y0, y1)) {
    axis.append(el('line', { x1: m.l, x2: W - m.r, y1: py(t), y2: py(t), class: 'grid' }));
    axis.append(el('text', { x: m.l - 6, y: py(t) + 4, 'text-anchor': 'end' }, fmt(t)));
  }
  for (const t of ticks(x0, x1)) {
    axis.append(el('text', { x: px(t), y: H - m.b + 16, 'text-anchor': 'middle' }, fmt(t)));
  }
  axis.append(el('line', { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b, class: 'frame' }));
  axis.append(el('line', { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, class: 'frame' }));
  axis.append(el('text', { x: (m.l + W - m.r) / 2, y: H - 4, 'text-anchor': 'middle', class: 'label' }, o.xLabel));
  axis.append(
    el('text', { x: 12, y: (m.t + H - m.b) / 2, 'text-anchor': 'middle', class: 'label', transform: `rotate(-90 12 ${(m.t + H - m.b) / 2})` }, o.yLabel),
  );
  svg.append(axis);
  let lx = m.l + 4;
  for (const s of series) {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (pts.length > 1) {
      svg.append(
        el('polyline', {
          points: pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' '),
          fill: 'none',
          stroke: s.color,
          'stroke-width': 1.6,
        }),
      );
    }
    if (s.dots || pts.length === 1) {
      for (const [x, y] of pts) svg.append(el('circle', { cx: px(x), cy: py(y), r: 3, fill: s.color }));
    }
    svg.append(el('rect', { x: lx, y: 6, width: 10, height: 10, fill: s.color }));
    const label = el('text', { x: lx + 14, y: 15, class: 'legend' }, s.name);
    svg.append(label);
    lx += 22 + s.name.length * 6.5;
  }
}

/** A grayscale image of values in [0, 1] (clipped), `side` x `side`, scaled up by `scale`. */
export function drawGray(ctx: CanvasRenderingContext2D, pixels: ArrayLike<number>, side: number, dx = 0, dy = 0, scale = 1): void {
  const img = ctx.createImageData(side, side);
  for (let i = 0; i < side * side; i++) {
    const v = Math.round(255 * Math.min(1, Math.max(0, pixels[i]!)));
    img.data.set([v, v, v, 255], i * 4);
  }
  blit(ctx, img, dx, dy, scale);
}

/** A signed image (r_adv) in a diverging palette: red positive, blue negative, scaled by max |v|. */
export function drawSigned(ctx: CanvasRenderingContext2D, pixels: ArrayLike<number>, side: number, dx = 0, dy = 0, scale = 1): void {
  let max = 1e-12;
  for (let i = 0; i < side * side; i++) max = Math.max(max, Math.abs(pixels[i]!));
  const img = ctx.createImageData(side, side);
  for (let i = 0; i < side * side; i++) {
    const v = pixels[i]! / max;
    const a = Math.round(255 * Math.min(1, Math.abs(v)));
    img.data.set(v >= 0 ? [255, 255 - a, 255 - a, 255] : [255 - a, 255 - a, 255, 255], i * 4);
  }
  blit(ctx, img, dx, dy, scale);
}

/** One example's `[channels, height, width]`. */
export type Shape = [number, number, number];

/** An image of any shape (CHW, values in [0, 1]): grey for one channel, RGB for three. */
export function drawImage(ctx: CanvasRenderingContext2D, pixels: ArrayLike<number>, shape: Shape, dx = 0, dy = 0, scale = 1): void {
  const [c, h, w] = shape;
  if (c === 1 && h === w) {
    drawGray(ctx, pixels, h, dx, dy, scale);
    return;
  }
  const img = ctx.createImageData(w, h);
  const plane = h * w;
  const at = (k: number, p: number) => Math.round(255 * Math.min(1, Math.max(0, pixels[(c === 3 ? k : 0) * plane + p]!)));
  for (let p = 0; p < plane; p++) img.data.set([at(0, p), at(1, p), at(2, p), 255], p * 4);
  blit(ctx, img, dx, dy, scale);
}

/**
 * A signed image (r_adv) of any shape. One channel: the diverging palette of drawSigned. Three
 * channels: a colour map, each channel's value mapped around mid-grey (brighter red where r_adv
 * adds red, darker where it takes red away), all scaled by the largest |v|.
 */
export function drawSignedImage(ctx: CanvasRenderingContext2D, pixels: ArrayLike<number>, shape: Shape, dx = 0, dy = 0, scale = 1): void {
  const [c, h, w] = shape;
  if (c === 1 && h === w) {
    drawSigned(ctx, pixels, h, dx, dy, scale);
    return;
  }
  let max = 1e-12;
  for (let i = 0; i < c * h * w; i++) max = Math.max(max, Math.abs(pixels[i]!));
  const img = ctx.createImageData(w, h);
  const plane = h * w;
  for (let p = 0; p < plane; p++) {
    if (c === 3) {
      const v = (k: number) => Math.round(128 + 127 * (pixels[k * plane + p]! / max));
      img.data.set([v(0), v(1), v(2), 255], p * 4);
    } else {
      const v = pixels[p]! / max;
      const a = Math.round(255 * Math.min(1, Math.abs(v)));
      img.data.set(v >= 0 ? [255, 255 - a, 255 - a, 255] : [255 - a, 255 - a, 255, 255], p * 4);
    }
  }
  blit(ctx, img, dx, dy, scale);
}

function blit(ctx: CanvasRenderingContext2D, img: ImageData, dx: number, dy: number, scale: number): void {
  if (scale === 1) {
    ctx.putImageData(img, dx, dy);
    return;
  }
  const tmp = new OffscreenCanvas(img.width, img.height);
  tmp.getContext('2d')!.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, dx, dy, img.width * scale, img.height * scale);
}

/** Rows = true label, columns = prediction; cell shade by row share, counts written in. */
export function drawConfusion(canvas: HTMLCanvasElement, confusion: number[], classes = Math.round(Math.sqrt(confusion.length))): void {
  const cell = 30;
  const pad = 22;
  canvas.width = pad + classes * cell;
  canvas.height = pad + classes * cell;
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.font = '11px system-ui, sans-serif';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  for (let r = 0; r < classes; r++) {
    const total = confusion.slice(r * classes, (r + 1) * classes).reduce((a, b) => a + b, 0) || 1;
    ctx.fillStyle = '#555';
    ctx.fillText(String(r), pad / 2, pad + r * cell + cell / 2);
    ctx.fillText(String(r), pad + r * cell + cell / 2, pad / 2);
    for (let c = 0; c < classes; c++) {
      const n = confusion[r * classes + c] ?? 0;
      const share = n / total;
      ctx.fillStyle = r === c ? `rgba(30, 120, 60, ${0.1 + 0.9 * share})` : n ? `rgba(200, 40, 40, ${0.15 + 0.85 * Math.min(1, share * 4)})` : '#f6f6f6';
      ctx.fillRect(pad + c * cell + 1, pad + r * cell + 1, cell - 2, cell - 2);
      if (n) {
        ctx.fillStyle = share > 0.5 ? '#fff' : '#222';
        ctx.fillText(String(n), pad + c * cell + cell / 2, pad + r * cell + cell / 2);
      }
    }
  }
}

/** Ten bars of a predicted distribution, as HTML (readable in the DOM and in screenshots). */
export function probabilityBars(container: HTMLElement, probs: number[], highlight?: number): void {
  const best = probs.indexOf(Math.max(...probs));
  container.replaceChildren(
    ...probs.map((p, c) => {
      const row = document.createElement('div');
      row.className = `bar${c === best ? ' best' : ''}${c === highlight ? ' label' : ''}`;
      row.innerHTML = `<span class="digit">${c}</span><span class="track"><span class="fill" style="width:${(100 * p).toFixed(1)}%"></span></span><span class="value">${(100 * p).toFixed(1)}%</span>`;
      return row;
    }),
  );
}
