// The golden parity suite in Node: every case in test/golden/cases against the tfjs reference,
// the crate's CPU kernels (native addon on 1, 2 and every core; wasm), burn-flex, burn WebGPU
// (the `webgpu` package) and the float64 loops. The cases, the exclusion
// list and the comparison are in parity-suite.ts, shared with parity.browser.test.ts (headless
// Chromium).
//
// Environment (for local runs; CI sets neither):
//   PARITY_IMPLS=tfjs-reference,vat-cpu-native-2t   run only these implementations (others are skipped)
//   GOLDEN_DIR=/path/to/cases              read the cases from another directory
//   PARITY_REPORT=1                        print the largest deviation per case and field

import { availableParallelism } from 'node:os';

import { nodeCases } from './golden-node.js';
import { nodeImplementations } from './implementations.js';
import { defineParitySuite } from './parity-suite.js';

defineParitySuite(nodeCases(), nodeImplementations(availableParallelism()), {
  only: process.env.PARITY_IMPLS?.split(',').map((s) => s.trim()),
  report: !!process.env.PARITY_REPORT,
});
