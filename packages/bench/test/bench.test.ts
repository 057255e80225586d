// `pnpm bench` and `pnpm accuracy`, run as a user runs them (the built dist/ files, in child
// processes), at sizes that take a few minutes on 2 cores instead of the real figures' hour.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { runNode } from '../../../test/support/process.js';

const PKG = fileURLToPath(new URL('..', import.meta.url));
const CLI = fileURLToPath(new URL('../../cli/dist/main.js', import.meta.url));

const node = (args: string[]) => runNode(args, { cwd: PKG });

const TARGETS = ['burn-cpu-node', 'burn-webgpu-node', 'burn-webgpu-chromium', 'tfjs-webgpu-chromium', 'tfjs-webgl-chromium'];

describe('pnpm bench', () => {
  it('measures every implementation, plain and VAT, and writes JSON and a markdown table with the ratios', async () => {
    const out = await fs.mkdtemp(path.join(os.tmpdir(), 'vat-bench-'));
    const r = await node([
      'dist/main.js',
      '--batch',
      '8',
      '--warmup',
      '1',
      '--min-steps',
      '1',
      '--min-seconds',
      '0',
      '--max-steps',
      '1',
      '--data-size',
      '16',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(await fs.readFile(path.join(out, 'bench.json'), 'utf8'));
    expect(report.runs.map((x: { target: string; result: { spec: { vat: boolean } } }) => `${x.target}/${x.result.spec.vat}`)).toEqual(
      TARGETS.flatMap((t) => [`${t}/false`, `${t}/true`]),
    );
    for (const run of report.runs) {
      expect(run.error).toBeUndefined();
      expect(run.result.stepMs).toHaveLength(1);
      expect(run.result.warmupMs).toHaveLength(1);
      expect(run.result.medianMs).toBeGreaterThan(0);
      expect(run.result.imgPerSec).toBeCloseTo((8 * 1000) / run.result.medianMs, 6);
      expect(Number.isFinite(run.result.lastLoss)).toBe(true);
      expect(run.peakBytes).toBeGreaterThan(50 * 2 ** 20);
    }
    // The adapters are named: SwiftShader for WebGPU here, and the CPU backend for burn-cpu.
    const adapter = (t: string) => report.runs.find((x: { target: string }) => x.target === t).result.adapter as string;
    expect(adapter('burn-cpu-node')).toMatch(/CPU/);
    expect(adapter('burn-webgpu-chromium')).toMatch(/WebGPU/);
    expect(adapter('tfjs-webgpu-chromium')).toMatch(/tfjs .* webgpu/);
    expect(adapter('tfjs-webgl-chromium')).toMatch(/tfjs .* webgl/);
    expect(report.machine.cpu).toMatch(/ x \d+$/);
    expect(report.machine.chromium).toMatch(/^\d+\./);
    const md = await fs.readFile(path.join(out, 'bench.md'), 'utf8');
    expect(r.stdout).toContain(md.trim().split('\n')[0]);
    for (const t of TARGETS) expect(md).toMatch(new RegExp(`\\| VAT/plain, ${t} \\| \\d+\\.\\d\\dx \\|`));
    expect(md).toMatch(/\| speed-up, VAT: burn-webgpu-chromium vs tfjs-webgpu-chromium \| \d+\.\d\dx \|/);
  });

  it('rejects an unknown target or flag with exit code 2 and says what is allowed', async () => {
    const bad = await node(['dist/main.js', '--only', 'burn-tpu']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown 'burn-tpu'; use burn-cpu-node, burn-webgpu-node");
    const flag = await node(['dist/main.js', '--bach', '64']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/Unknown option '--bach'/);
    const num = await node(['dist/main.js', '--batch', '0']);
    expect(num.code).toBe(2);
    expect(num.stderr).toContain('--batch must be an integer >= 1');
  });
});

describe('pnpm accuracy', () => {
  it('reports a finished run with its command, status, per-epoch accuracy and test accuracy', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'vat-accuracy-'));
    // A real (small) run in the place of the seed-plain configuration.
    const run = await node([
      CLI,
      'train',
      '--preset',
      'seed',
      '--no-vat',
      '--epochs',
      '1',
      '--train-size',
      '512',
      '--batch-size',
      '64',
      '--out',
      path.join(dir, 'seed-plain'),
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const test = JSON.parse(run.stdout.trim().split('\n').pop()!);
    const results = path.join(dir, 'results.md');
    await fs.writeFile(results, '# Results\n\nText before.\n\n## Accuracy\n\n<!-- accuracy:begin -->old<!-- accuracy:end -->\n\nText after.\n');
    const r = await node(['dist/accuracy.js', '--only', 'seed-plain,seed-vat', '--dir', dir, '--results', results, '--report-only']);
    expect(r.code, r.stderr).toBe(0);
    const doc = await fs.readFile(results, 'utf8');
    expect(doc).toContain('Text before.');
    expect(doc).toContain('Text after.');
    expect(doc).not.toContain('old');
    const row = doc.split('\n').find((l) => l.startsWith('| seed, no dropout, no VAT'))!;
    expect(row).toContain('`vat train --preset seed --no-vat`');
    expect(row).toContain('| finished | 1/1 |');
    expect(row).toContain(`| ${(100 * test.accuracy).toFixed(2)}% |`);
    expect(doc.split('\n').find((l) => l.startsWith('| seed, no dropout, VAT'))).toContain('| not started |');
  });

  it('rejects an unknown configuration with exit code 2', async () => {
    const r = await node(['dist/accuracy.js', '--only', 'cifar', '--report-only']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown configuration 'cifar'");
  });
});
