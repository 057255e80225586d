// The drawing pad: a white digit on black, reduced to a 28x28 image the way MNIST's were made
// (LeCun et al.): the digit is scaled to fit a 20x20 box, keeping its aspect ratio, with
// anti-aliasing (here: area averaging), then placed in the 28x28 frame so that its centre of
// mass is at the centre. Pixels are then value/255, as for the idx files.

export const SIDE = 28;
const BOX = 20;

/** Grayscale values 0..255 of a square canvas, row-major. */
function grayscale(canvas: HTMLCanvasElement): { gray: Float32Array; size: number } {
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  const { data, width, height } = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const gray = new Float32Array(width * height);
  for (let i = 0; i < gray.length; i++) gray[i] = data[i * 4]!; // white on black: red = green = blue
  return { gray, size: Math.min(width, height) };
}

/** The 28x28 input (values in [0, 1]) for what is drawn on `canvas`, or undefined if it is empty. */
export function toMnist(canvas: HTMLCanvasElement): Float32Array | undefined {
  const { gray, size } = grayscale(canvas);
  const w = canvas.width;
  let x0 = size,
    y0 = size,
    x1 = -1,
    y1 = -1;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (gray[y * w + x]! > 16) {
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y);
      }
    }
  }
  if (x1 < 0) return undefined;
  const bw = x1 - x0 + 1;
  const bh = y1 - y0 + 1;
  const s = BOX / Math.max(bw, bh);
  const tw = Math.max(1, Math.round(bw * s));
  const th = Math.max(1, Math.round(bh * s));
  // Area averaging: every source pixel adds to the target pixel it falls in.
  const sum = new Float32Array(tw * th);
  const count = new Float32Array(tw * th);
  for (let y = y0; y <= y1; y++) {
    const ty = Math.min(th - 1, Math.floor((y - y0) * s));
    for (let x = x0; x <= x1; x++) {
      const tx = Math.min(tw - 1, Math.floor((x - x0) * s));
      sum[ty * tw + tx]! += gray[y * w + x]!;
      count[ty * tw + tx]! += 1;
    }
  }
  let mass = 0,
    cx = 0,
    cy = 0;
  const small = new Float32Array(tw * th);
  for (let i = 0; i < small.length; i++) {
    small[i] = count[i]! ? sum[i]! / count[i]! : 0;
    mass += small[i]!;
    cx += small[i]! * (i % tw);
    cy += small[i]! * Math.floor(i / tw);
  }
  cx /= mass;
  cy /= mass;
  // Shift so that the centre of mass lands on the frame's centre, staying inside the frame.
  const ox = Math.min(SIDE - tw, Math.max(0, Math.round(SIDE / 2 - 0.5 - cx)));
  const oy = Math.min(SIDE - th, Math.max(0, Math.round(SIDE / 2 - 0.5 - cy)));
  const out = new Float32Array(SIDE * SIDE);
  for (let y = 0; y < th; y++) {
    for (let x = 0; x < tw; x++) out[(y + oy) * SIDE + x + ox] = small[y * tw + x]! / 255;
  }
  return out;
}

/** Makes `canvas` a pad to draw on with the mouse, a pen or a finger; `onChange` after each stroke. */
export function drawingPad(canvas: HTMLCanvasElement, onChange: () => void): { clear(): void } {
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  const clear = () => {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  };
  clear();
  let last: [number, number] | undefined;
  const at = (e: PointerEvent): [number, number] => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) * canvas.width) / r.width, ((e.clientY - r.top) * canvas.height) / r.height];
  };
  canvas.addEventListener('pointerdown', (e) => {
    canvas.setPointerCapture(e.pointerId);
    last = at(e);
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!last) return;
    const p = at(e);
    ctx.strokeStyle = '#fff';
    // A stroke about as thick, relative to the digit, as MNIST's pen strokes.
    ctx.lineWidth = canvas.width / 14;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(...last);
    ctx.lineTo(...p);
    ctx.stroke();
    last = p;
  });
  const end = () => {
    if (!last) return;
    last = undefined;
    onChange();
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  return { clear };
}
