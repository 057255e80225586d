// The golden parity suite, shared by the Node run (parity.test.ts) and the headless-Chromium run
// (parity.browser.test.ts): every case in EXPECTED_CASES against every implementation given, one
// test each, comparing whole arrays with the case's own tolerances. No Node APIs here.

import { afterAll, describe, expect, it } from 'vitest';

import { type CaseSource, compare, type Deviation, describeDeviation, type GoldenCase } from './golden.js';
import type { Arr, Implementation, StepInput } from './implementations.js';

/** Every case the suite expects. A case file that disappears (or appears unlisted) fails the suite. */
export const EXPECTED_CASES = [
  'forward-b1',
  'forward-b7-odd-size',
  'zeros-input-b7',
  'vat-ip1-b1',
  'vat-ip1-b7',
  'vat-ip2-b7',
  'vat-hyper-b7',
  'semi-ip1-l3-u7',
  'semi-ip2-entmin-l3-u7',
  'supervised-entmin-b7',
  'entmin-no-vat-semi-l3-u7',
  'semi-entmin-weight-l3-u7',
  'dropout-b7',
  'dropout-semi-entmin-l3-u7',
  'adam-custom-b7',
  'adadelta-b7',
  'adadelta-custom-b7',
  'real-size-b1',
  'op-conv2d',
  'op-maxpool',
  'op-dense',
  'op-kl',
  'op-entropy',
  'op-cross-entropy',
  'op-normalize',
  'spec-every-layer-b6',
  'spec-gap-semi-entmin-l4-u6',
  'spec-mlp-bn-semi-l4-u8',
];

/**
 * The one exclusion list, for the Node and the browser suite alike. Each entry skips (visibly)
 * the tests of the named implementations on the cases it matches, and says why.
 */
export const EXCLUSIONS: { impls: (name: string) => boolean; cases: (c: string) => boolean; reason: string }[] = [
  {
    // Every engine and thread count of the crate: burn-*, vat-cpu-*.
    impls: (name) => name.startsWith('burn-') || name.startsWith('vat-'),
    cases: (c) => c.startsWith('op-'),
    reason: 'the crate exposes no per-layer entry point; its layers are covered by the whole-step cases',
  },
  {
    impls: (name) => name === 'naive-f64',
    cases: (c) => !c.startsWith('op-'),
    reason: 'the float64 loops implement single layers and losses only (no autodiff, no optimiser)',
  },
];

export interface SuiteOptions {
  /** Run only these implementations (PARITY_IMPLS); the others are skipped visibly. */
  only?: string[];
  /** Print the largest deviation per case, implementation and field (PARITY_REPORT). */
  report?: boolean;
}

function stepInput(c: GoldenCase): StepInput {
  const i = c.inputs;
  const f32 = (k: string) => i[k] as Float32Array | undefined;
  return {
    weights: f32('weights')!,
    x: f32('x')!,
    y: Uint32Array.from(i.y as number[]),
    xUnlabeled: f32('xUnlabeled'),
    d: f32('d'),
    masksLabeled: f32('masksLabeled'),
    masksUnlabeled: f32('masksUnlabeled'),
    lr: i.lr as number,
  };
}

async function run(impl: Implementation, c: GoldenCase): Promise<Record<string, Float32Array | number>> {
  if (c.kind === 'step') {
    if (!impl.step) throw new Error(`${impl.name} has no step(); exclude it from ${c.name} in EXCLUSIONS`);
    const out = await impl.step(c.options, stepInput(c));
    if (c.options.vat === false) expect(out.rAdv.length, 'rAdv is empty when VAT is off').toBe(0);
    return { ...out };
  }
  if (!impl.op) throw new Error(`${impl.name} has no op(); exclude it from ${c.name} in EXCLUSIONS`);
  const inputs: Record<string, Arr> = {};
  for (const [k, v] of Object.entries(c.inputs)) inputs[k] = { data: v as Float32Array, shape: c.shapes[k]! };
  const out = await impl.op(c.op!, inputs);
  const flat: Record<string, Float32Array> = {};
  for (const [k, v] of Object.entries(out)) {
    expect(v.shape, `shape of ${k}`).toEqual(c.shapes[`expected.${k}`]);
    flat[k] = v.data;
  }
  return flat;
}

/** Registers the suite's tests (call at the top level of a test file). */
export function defineParitySuite(source: CaseSource, implementations: Implementation[], options: SuiteOptions = {}): void {
  const report: { impl: string; name: string; dev: Deviation }[] = [];

  it('the golden directory holds exactly the expected cases', async () => {
    expect(await source.list(), `cases in ${source.where}`).toEqual([...EXPECTED_CASES].sort());
  });

  for (const name of EXPECTED_CASES) {
    describe(name, () => {
      for (const impl of implementations) {
        const excluded = EXCLUSIONS.find((e) => e.impls(impl.name) && e.cases(name));
        if (excluded) {
          it.skip(`${impl.name} (excluded: ${excluded.reason})`, () => {});
          continue;
        }
        if (options.only && !options.only.includes(impl.name)) {
          it.skip(`${impl.name} (not in PARITY_IMPLS)`, () => {});
          continue;
        }
        it(`${impl.name} matches the golden outputs`, async () => {
          // Loaded inside the test so that one missing file fails its own tests, not the collection.
          const c = await source.load(name);
          const actual = await run(impl, c);
          const problems: string[] = [];
          for (const [field, expected] of Object.entries(c.expected)) {
            const tol = c.tolerances[field]!;
            const dev = compare(field, actual[field], expected, tol);
            report.push({ impl: impl.name, name, dev });
            if (dev.failures > 0) problems.push(describeDeviation(dev, tol));
          }
          expect(problems, `${impl.name} on ${name} (${c.description})`).toEqual([]);
        });
      }
    });
  }

  afterAll(() => {
    if (!options.report) return;
    const lines = report.map(
      (r) =>
        `${r.impl.padEnd(22)} ${r.name.padEnd(28)} ${r.dev.field.padEnd(8)} max|diff| ${r.dev.maxAbs.toExponential(2)}  worst/allowed ${r.dev.worstRatio.toExponential(2)}`,
    );
    console.log(lines.join('\n'));
  });
}
