// Single layers and losses as plain float64 loops over NCHW arrays, written from their
// definitions. It shares no code with the tfjs reference or burn, so the golden `op` cases
// (whose expected values come from tfjs) are checked by a second, independent implementation.

export interface Arr {
  data: Float32Array;
  shape: number[];
}

const arr = (shape: number[], f: (i: number) => number): Arr => {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = f(i);
  return { data, shape };
};

function conv2dValid(x: Arr, w: Arr, b: Arr): Arr {
  const [n, c, h, wd] = x.shape as [number, number, number, number];
  const o = w.shape[0]!;
  const [oh, ow] = [h - 2, wd - 2];
  return arr([n, o, oh, ow], (i) => {
    const col = i % ow;
    const row = Math.floor(i / ow) % oh;
    const oc = Math.floor(i / (ow * oh)) % o;
    const s = Math.floor(i / (ow * oh * o));
    let sum = b.data[oc]!;
    for (let ic = 0; ic < c; ic++) {
      for (let kr = 0; kr < 3; kr++) {
        for (let kc = 0; kc < 3; kc++) {
          sum += x.data[((s * c + ic) * h + row + kr) * wd + col + kc]! * w.data[((oc * c + ic) * 3 + kr) * 3 + kc]!;
        }
      }
    }
    return sum;
  });
}

function maxPool2x2(x: Arr): Arr {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const [ph, pw] = [Math.floor(h / 2), Math.floor(w / 2)];
  return arr([n, c, ph, pw], (i) => {
    const col = i % pw;
    const row = Math.floor(i / pw) % ph;
    const plane = Math.floor(i / (pw * ph));
    const at = (r: number, cc: number) => x.data[(plane * h + r) * w + cc]!;
    return Math.max(at(2 * row, 2 * col), at(2 * row, 2 * col + 1), at(2 * row + 1, 2 * col), at(2 * row + 1, 2 * col + 1));
  });
}

function dense(x: Arr, w: Arr, b: Arr): Arr {
  const [n, inp] = x.shape as [number, number];
  const o = w.shape[0]!;
  return arr([n, o], (i) => {
    const s = Math.floor(i / o);
    const j = i % o;
    let sum = b.data[j]!;
    for (let k = 0; k < inp; k++) sum += x.data[s * inp + k]! * w.data[j * inp + k]!;
    return sum;
  });
}

/** Rows of log-softmax, in float64. */
function logSoftmaxRows(x: Arr): number[][] {
  const [n, k] = x.shape as [number, number];
  const rows: number[][] = [];
  for (let s = 0; s < n; s++) {
    const row = Array.from(x.data.subarray(s * k, (s + 1) * k));
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((acc, v) => acc + Math.exp(v - m), 0));
    rows.push(row.map((v) => v - lse));
  }
  return rows;
}

const scalar = (v: number): Arr => ({ data: Float32Array.of(v), shape: [] });

export function runNaiveOp(op: string, inputs: Record<string, Arr>): Record<string, Arr> {
  const get = (k: string) => inputs[k]!;
  switch (op) {
    case 'conv2d_valid_nchw':
      return { y: conv2dValid(get('x'), get('w'), get('b')) };
    case 'maxpool2x2_nchw':
      return { y: maxPool2x2(get('x')) };
    case 'dense_out_in':
      return { y: dense(get('x'), get('w'), get('b')) };
    case 'kl_with_logits': {
      // value = mean_n sum_k p (log p - log q); d/dq_j = (q_j - p_j) / N with p constant.
      const lp = logSoftmaxRows(get('p'));
      const lq = logSoftmaxRows(get('q'));
      const n = lp.length;
      const k = lp[0]!.length;
      let v = 0;
      for (let s = 0; s < n; s++) for (let j = 0; j < k; j++) v += Math.exp(lp[s]![j]!) * (lp[s]![j]! - lq[s]![j]!);
      return { value: scalar(v / n), grad_q: arr([n, k], (i) => (Math.exp(lq[Math.floor(i / k)]![i % k]!) - Math.exp(lp[Math.floor(i / k)]![i % k]!)) / n) };
    }
    case 'entropy_with_logits': {
      // H = -sum p log p; dH/dz_j = -p_j (log p_j + H_row).
      const lp = logSoftmaxRows(get('logits'));
      const n = lp.length;
      const k = lp[0]!.length;
      const h = lp.map((row) => -row.reduce((acc, l) => acc + Math.exp(l) * l, 0));
      return {
        value: scalar(h.reduce((a, b) => a + b, 0) / n),
        grad: arr([n, k], (i) => {
          const s = Math.floor(i / k);
          const l = lp[s]![i % k]!;
          return (-Math.exp(l) * (l + h[s]!)) / n;
        }),
      };
    }
    case 'cross_entropy': {
      const lp = logSoftmaxRows(get('logits'));
      const labels = Array.from(get('labels').data);
      const n = lp.length;
      const k = lp[0]!.length;
      const v = -labels.reduce((acc, y, s) => acc + lp[s]![y]!, 0) / n;
      return { value: scalar(v), grad: arr([n, k], (i) => (Math.exp(lp[Math.floor(i / k)]![i % k]!) - (labels[Math.floor(i / k)] === i % k ? 1 : 0)) / n) };
    }
    case 'normalize_per_sample': {
      const d = get('d');
      const n = d.shape[0]!;
      const per = d.data.length / n;
      const out = new Float32Array(d.data.length);
      for (let s = 0; s < n; s++) {
        const row = Array.from(d.data.subarray(s * per, (s + 1) * per));
        const m = Math.max(Math.max(...row.map(Math.abs)), 1e-30);
        const scaled = row.map((v) => v / m);
        const norm = Math.sqrt(scaled.reduce((a, v) => a + v * v, 0) + 1e-6);
        scaled.forEach((v, i) => {
          out[s * per + i] = v / norm;
        });
      }
      return { y: { data: out, shape: d.shape } };
    }
    default:
      throw new Error(`naive: unknown op '${op}'`);
  }
}
