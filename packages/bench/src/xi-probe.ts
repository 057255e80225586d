// How well the power iteration finds the adversarial direction at a given xi, in float32: the
// trainer's vatView on the same weights, test images and starting direction d at several xi, and
// the cosine between the r_adv they give. Where the linearisation holds and float32 resolves the
// probe, nearby xi agree (cosine near 1); where xi * d is lost in rounding, r_adv is noise.
//
//   node packages/bench/dist/xi-probe.js CHECKPOINT_OR_WEIGHTS [xi ...]   (after pnpm run build)
import fs from 'node:fs';

import { Trainer, all, gather } from '@vat/core';
import { loadMnistTest } from '@vat/core/node';

const [file, ...rest] = process.argv.slice(2);
if (!file) {
  console.error('usage: node packages/bench/dist/xi-probe.js CHECKPOINT_OR_WEIGHTS [xi ...]');
  process.exit(2);
}
const xis = rest.length ? rest.map(Number) : [1e-6, 1e-3, 1e-1];
const bytes = new Uint8Array(fs.readFileSync(file));
let base: Trainer;
try {
  base = await Trainer.fromCheckpoint(bytes, { backend: 'cpu' });
} catch {
  base = await Trainer.fromWeights(bytes, { backend: 'cpu' });
}
const weights = await base.exportWeights();
const test = await loadMnistTest();
const n = 64;
const x = gather(test, all(test).indices.subarray(0, n)).x;
const px = x.length / n;
const views = new Map<number, Awaited<ReturnType<Trainer['vatView']>>>();
for (const xi of xis) {
  const t = await Trainer.create({ ...base.options, xi, backend: 'cpu' });
  await t.importWeights(weights);
  views.set(xi, await t.vatView(x, 7));
  t.dispose();
}
const cos = (a: Float32Array, b: Float32Array) => {
  let s = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    s += a[i]! * b[i]!;
    na += a[i]! ** 2;
    nb += b[i]! ** 2;
  }
  return s / Math.sqrt(na * nb);
};
for (let i = 0; i < xis.length; i++) {
  for (let j = i + 1; j < xis.length; j++) {
    const [a, b] = [views.get(xis[i]!)!, views.get(xis[j]!)!];
    const cs = Array.from({ length: n }, (_, k) => cos(a.rAdv.subarray(k * px, (k + 1) * px), b.rAdv.subarray(k * px, (k + 1) * px))).sort((p, q) => p - q);
    console.log(`xi ${xis[i]} vs ${xis[j]}: cosine of r_adv over ${n} test images: median ${cs[n >> 1]!.toFixed(3)}, min ${cs[0]!.toFixed(3)}`);
  }
}
for (const xi of xis) console.log(`xi ${xi}: mean KL(p(y|x) || p(y|x + r_adv)) ${(views.get(xi)!.kl.reduce((s, v) => s + v, 0) / n).toExponential(3)}`);
