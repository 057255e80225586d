// Named option sets, shared by the CLI and the web demo. Options given explicitly (CLI flags,
// form fields) override a preset's values.
import type { RunOptions } from './options.js';

export interface Preset {
  description: string;
  options: RunOptions;
}

/** The official code's semi-supervised schedule, which paper-semi and paper-mlp-semi share. */
const PAPER_SEMI: RunOptions = {
  epochs: 100,
  labeled: 100,
  batchSize: 100,
  unlabeledBatchSize: 250,
  valSize: 1000,
  optimizer: 'adam',
  lr: 0.002,
  lrDecay: 0.9,
  vat: true,
  eps: 5.0,
  xi: 1e-6,
  powerIterations: 1,
  alpha: 1,
  dropout: false,
};

export const PRESETS: Record<string, Preset> = {
  // Sized to finish within 10 minutes on 2 CPU cores (burn-flex in wasm, single-threaded) and
  // reach >= 97% test accuracy; see README "Results" for the measured figures.
  default: {
    description: 'quick supervised VAT run: finishes in minutes on 2 CPU cores, >= 97% test accuracy',
    options: {
      epochs: 1,
      trainSize: 15000,
      valSize: 2000,
      batchSize: 64,
      optimizer: 'adam',
      lr: 0.002,
      vat: true,
      eps: 1,
      xi: 10,
      powerIterations: 1,
      alpha: 1,
      dropout: false,
    },
  },
  // The Keras experiment this project started from: 12 epochs, batch 128, Adadelta (Keras
  // defaults), eps 1, xi 10, one power iteration, VAT on the labeled batch, validation on the
  // test set. Add --dropout and/or --no-vat for the other three rows of its table.
  seed: {
    description: 'the seed Keras experiment: 12 epochs, batch 128, Adadelta, eps 1, xi 10, Ip 1',
    options: {
      epochs: 12,
      batchSize: 128,
      valSize: 0,
      optimizer: 'adadelta',
      lr: 1.0,
      rho: 0.95,
      epsilon: 1e-7,
      vat: true,
      eps: 1,
      xi: 10,
      powerIterations: 1,
      alpha: 1,
      dropout: false,
    },
  },
  // Semi-supervised MNIST with 100 labels on the seed's CNN, on the official code's schedule shape
  // (100 labeled + 250 unlabeled per step, Adam 0.002 decayed x0.9 per epoch, Ip 1, alpha 1),
  // with what it took here (docs/results.md, "100 labels"): VAT+EntMin (TPAMI's entropy term),
  // eps 2.0 and xi 1e-2 (the paper's 1e-6 gives no adversarial direction in float32). Before,
  // eps 5 and xi 1e-6 fell from 90.9% to 79.7% over 35 epochs; eps 4 reached 94%; eps 2.0 gives
  // 98.06% test accuracy after 8 epochs on the default split (validation: 97.1-97.6% from epoch
  // 2); seeds 1 and 2 give 94.34% and 94.60%.
  'paper-semi': {
    description: "semi-supervised, 100 labels, the seed's CNN: VAT+EntMin, eps 2, xi 1e-2, Adam 0.002 x0.9/epoch, 8 epochs",
    options: { ...PAPER_SEMI, eps: 2.0, xi: 1e-2, entmin: true, epochs: 8 },
  },
  // The paper's own semi-supervised MNIST model (ICLR'16: 784-1200-1200-10, batch norm after
  // every layer; 2.12% test error with 100 labels) on the official code's schedule shape (100
  // labeled + 250 unlabeled per step, Adam 0.002 decayed x0.9 per epoch), with what it took in
  // float32 here (docs/results.md, "The paper's MNIST row"): the entropy term (TPAMI's
  // VAT+EntMin), without which the MLP sat at 76-84% for 4,000 steps of the official schedule,
  // at weight 0.3, as at 1 it locks in the first epochs' mistakes (96.29/93.75/94.51% over
  // seeds 42, 1, 2; at 0.3: 96.85/94.38/96.03%); xi 1e-2, as the paper's 1e-6 gives no
  // adversarial direction in float32 (it did no better here); TPAMI's eps 5.0 (eps 2.0 gave
  // 95.44/96.99/88.88% after 30 epochs). The official decay per step (x0.9 per 500 steps, so
  // x0.9515 per 236-step epoch) for 40 epochs, where 10 at x0.9 per epoch stopped while it still
  // climbed (seeds 42, 1: 97.59/95.02% against 96.85/94.38%), and the official code's last step,
  // batch norm's statistics re-estimated over the training images. Short of the paper's 97.88%.
  'paper-mlp-semi': {
    description:
      "semi-supervised, 100 labels, the paper's MLP (784-1200-1200-10, batch norm): VAT+EntMin at 0.3, eps 5, xi 1e-2, 40 epochs at x0.9515, batch norm re-estimated",
    options: {
      ...PAPER_SEMI,
      model: 'mlp-1200-1200',
      eps: 5.0,
      xi: 1e-2,
      entmin: true,
      entminWeight: 0.3,
      epochs: 40,
      lrDecay: 0.9515,
      reestimateBn: true,
    },
  },
};

/** The seed's published numbers (GTX 1080, Keras), shown beside ours by `compare`. */
export const SEED_TABLE = [
  { dropout: false, vat: false, accuracy: 0.9877, secondsPerEpoch: 8 },
  { dropout: true, vat: false, accuracy: 0.9853, secondsPerEpoch: 8 },
  { dropout: false, vat: true, accuracy: 0.9916, secondsPerEpoch: 18 },
  { dropout: true, vat: true, accuracy: 0.9901, secondsPerEpoch: 19 },
];
