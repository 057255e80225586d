// `pnpm bench` and `pnpm accuracy`, run as a user runs them (the built dist/ files, in child
// processes), at sizes that take a few minutes on 2 cores instead of the real figures' hour.
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { runNode } from '../../../test/support/process.js';

const PKG = fileURLToPath(new URL('..', import.meta.url));
const CLI = fileURLToPath(new URL('../../cli/dist/main.js', import.meta.url));
const BIOME = fileURLToPath(new URL('../../../node_modules/.bin/biome', import.meta.url));

const node = (args: string[]) => runNode(args, { cwd: PKG });

/** The bench's targets on this machine (torch-* only where `import torch` works, which CI has not). */
const THREADS = [...new Set([1, 2, os.availableParallelism()])].sort((a, b) => a - b);
const TARGETS = [
  'burn-flex-wasm-node',
  ...THREADS.map((t) => `vat-cpu-native-node-${t}t`),
  'vat-cpu-wasm-node',
  'burn-flex-wasm-chromium',
  ...THREADS.map((t) => `vat-cpu-wasm-chromium-${t}t`),
  'burn-webgpu-node',
  'burn-webgpu-chromium',
  'tfjs-webgpu-chromium',
  'tfjs-webgl-chromium',
];

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
      '--web-demo',
      'cpu',
      '--out',
      out,
    ]);
    // On a failure, name the failed runs first: the whole stderr runs past what the report shows.
    const failures = r.stderr.split('\n').filter((line) => /failed/.test(line));
    expect(r.code, [...failures, '', r.stderr.slice(-6000)].join('\n')).toBe(0);
    const report = JSON.parse(await fs.readFile(path.join(out, 'bench.json'), 'utf8'));
    const ran = report.runs.map((x: { target: string; result: { spec: { vat: boolean } } }) => `${x.target}/${x.result.spec.vat}`);
    expect(ran.filter((t: string) => !t.startsWith('torch-'))).toEqual(TARGETS.flatMap((t) => [`${t}/false`, `${t}/true`]));
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
    expect(adapter('burn-flex-wasm-node')).toBe('CPU: burn-flex in WebAssembly');
    expect(adapter('vat-cpu-native-node-2t')).toBe('CPU: vat-core kernels, native addon, 2 threads');
    expect(adapter('vat-cpu-wasm-chromium-2t')).toBe('CPU: vat-core kernels, WebAssembly, threaded, 2 threads');
    expect(adapter('burn-webgpu-chromium')).toMatch(/WebGPU/);
    expect(adapter('tfjs-webgpu-chromium')).toMatch(/tfjs .* webgpu/);
    expect(adapter('tfjs-webgl-chromium')).toMatch(/tfjs .* webgl/);
    expect(report.machine.cpu).toMatch(/ x \d+$/);
    expect(report.machine.chromium).toMatch(/^\d+\./);
    const md = await fs.readFile(path.join(out, 'bench.md'), 'utf8');
    expect(r.stdout).toContain(md.trim().split('\n')[0]);
    for (const t of TARGETS) expect(md).toMatch(new RegExp(`\\| VAT/plain, ${t} \\| \\d+\\.\\d\\dx \\|`));
    expect(md).toMatch(/\| speed-up over burn-flex-wasm-node, VAT: vat-cpu-native-node-2t \| \d+\.\d\dx \|/);
    expect(md).toMatch(/\| browser CPU path, VAT: vat-cpu-wasm-chromium-\d+t vs burn-flex-wasm-chromium \| \d+\.\d\dx \|/);
    // The web demo from page load to its first step, on the CPU backend.
    expect(report.pageLoads).toHaveLength(1);
    expect(report.pageLoads[0]).toMatchObject({ backend: 'cpu', adapter: expect.stringMatching(/^CPU: vat-core kernels, WebAssembly/) });
    expect(report.pageLoads[0].firstStepMs).toBeGreaterThan(report.pageLoads[0].trainingMs);
    expect(md).toMatch(/\| cpu \| CPU: vat-core kernels.* \| \d+\.\d \| \d+\.\d \| \d+\.\d \|/);
    expect(md).toMatch(/\| speed-up, VAT: burn-webgpu-chromium vs tfjs-webgpu-chromium \| \d+\.\d\dx \|/);
  });

  it('rejects an unknown target or flag with exit code 2 and says what is allowed', async () => {
    const bad = await node(['dist/main.js', '--only', 'burn-tpu']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown 'burn-tpu'; use burn-flex-wasm-node, vat-cpu-native-node-1t");
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
    // What the harness writes when it starts a run, then resumes it at another commit.
    await fs.writeFile(path.join(dir, 'seed-plain', 'harness.json'), '{"commits":["abc1234","def5678"]}\n');
    const results = path.join(dir, 'results.md');
    await fs.writeFile(results, '# Results\n\nText before.\n\n## Accuracy\n\n<!-- accuracy:begin -->old<!-- accuracy:end -->\n\nText after.\n');
    const r = await node(['dist/accuracy.js', '--only', 'seed-plain,seed-vat', '--dir', dir, '--results', results, '--report-only']);
    expect(r.code, r.stderr).toBe(0);
    const doc = await fs.readFile(results, 'utf8');
    expect(doc).toContain('Text before.');
    expect(doc).toContain('Text after.');
    expect(doc).not.toContain('old');
    const row = doc.split('\n').find((l) => l.startsWith('| seed, no dropout, no VAT'))!;
    expect(row).toMatch(/\| `vat train --preset seed --no-vat` +\| abc1234, def5678 \|/);
    expect(row).toMatch(/\| finished +\| +1\/1 \|/);
    expect(row).toContain(` ${(100 * test.accuracy).toFixed(2)}% |`);
    expect(doc.split('\n').find((l) => l.startsWith('| seed, no dropout, VAT'))).toMatch(/\| - +\| not started +\|/);
    // A configuration outside --only keeps its row, so a run of one does not drop the others' figures.
    expect(doc.split('\n').find((l) => l.startsWith("| semi-supervised, 100 labels, the seed's CNN"))).toMatch(/\| not started +\|/);
    // The repository's formatter (biome, a gate of the test command) leaves the written file as it is.
    const formatted = execFileSync(BIOME, ['format', '--stdin-file-path=results.md'], { input: doc, encoding: 'utf8' });
    expect(formatted).toBe(doc);
  });

  it('rejects an unknown configuration with exit code 2', async () => {
    const r = await node(['dist/accuracy.js', '--only', 'cifar', '--report-only']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown configuration 'cifar'");
  });
});
