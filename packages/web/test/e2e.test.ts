// End-to-end tests of the built page: `vite build` into a temporary directory, `vite preview`
// on a free localhost port, and Debian's headless Chromium (/usr/bin/chromium) driven by
// playwright-core. WebGPU there is SwiftShader, a software adapter, so training is slow and the
// runs below are sized by measurement (see THRESHOLDS). Assertions read the DOM and
// `window.__vat`, never screenshots (WebGPU canvases screenshot blank in headless mode).
import { promises as fs } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { type Browser, type Page, chromium } from 'playwright-core';
import { PNG } from 'pngjs';
import { type PreviewServer, build, preview } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CHROMIUM, CHROMIUM_FLAGS, CHROMIUM_WEBGPU_FLAGS } from '../../../test/support/chromium.js';
import { runNode } from '../../../test/support/process.js';
import { MNIST_DIR } from '../vite.config.js';

const WEB = fileURLToPath(new URL('..', import.meta.url));
const CLI = fileURLToPath(new URL('../../cli/dist/main.js', import.meta.url));
const BASE_FLAGS = [...CHROMIUM_FLAGS, '--headless'];
const WEBGPU_FLAGS = [...CHROMIUM_WEBGPU_FLAGS, '--headless'];

/**
 * The training run: STEPS steps of BATCH on WebGPU, paused after PAUSE_AT steps, the page
 * reloaded, and resumed from IndexedDB; then scored on TEST_SIZE test images (the first ones of
 * MNIST's test set, loaded as the user's own idx files).
 *
 * Sized by measurement in headless Chromium on SwiftShader, 2 cores: a VAT step takes about
 * 4.7 s at batch 16 (3.4 img/s), 7 s at 32 and 11.4 s at 64; evaluation runs at about 55 img/s,
 * so the 10,000 MNIST test images alone would take 3 minutes. 30 steps of 16 take about 2.5
 * minutes. With the default preset's settings and seed they reach 78.4% on these 500 images on
 * the CPU backend (the same run of 20 steps of 32: 73.2% on CPU, 73.0% on SwiftShader); chance is
 * 10%. MIN_ACCURACY leaves 8 points for float differences between adapters.
 */
const THRESHOLDS = { STEPS: 30, BATCH: 16, PAUSE_AT: 10, TEST_SIZE: 500, MIN_ACCURACY: 0.7 };

const vat = (args: string[]) => runNode([CLI, ...args]);

/** `vat eval FILE --backend cpu --json` and its accuracy and count. */
async function cliEval(weights: string, extra: string[] = []): Promise<{ accuracy: number; count: number }> {
  const r = await vat(['eval', weights, '--backend', 'cpu', '--json', ...extra]);
  expect(r.code, r.stderr).toBe(0);
  const line = JSON.parse(r.stdout.trim().split('\n').pop()!);
  return { accuracy: line.accuracy, count: line.count };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** An idx file: big-endian magic (2051 images, 2049 labels), the dimensions, then the bytes. */
function idx(magic: number, dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => {
    header.writeUInt32BE(d, 4 + 4 * i);
  });
  return Buffer.concat([header, data]);
}

// biome-ignore lint/suspicious/noExplicitAny: the page's state, read as JSON through page.evaluate
type VatState = Record<string, any>;
// biome-ignore lint/suspicious/noExplicitAny: whatever the expression evaluates to in the page
const vatState = (page: Page, expr: string) => page.evaluate(`(() => { const s = window.__vat; return ${expr}; })()`) as Promise<any>;

let server: PreviewServer;
let url: string;
let browser: Browser;
let tmp: string;
/** The user's own test set: idx files of the first TEST_SIZE MNIST test images. */
let testImages: string;
let testLabels: string;

async function loadTestFiles(page: Page): Promise<void> {
  await page.setInputFiles('#test-images', testImages);
  await page.setInputFiles('#test-labels', testLabels);
  await page.click('#load-files');
  await page.waitForFunction((n) => (window as unknown as { __vat: VatState }).__vat.data?.test.count === n, THRESHOLDS.TEST_SIZE);
}

/** Few live test images and frequent refreshes: predictions cost seconds on SwiftShader. */
async function configureView(page: Page): Promise<void> {
  await page.fill('#refresh-every', '10');
  await page.dispatchEvent('#refresh-every', 'change');
  await page.fill('#monitor-size', '48');
  await page.dispatchEvent('#monitor-size', 'change');
}

/** The MNIST files each page fetched, with their sizes on the wire. */
const mnistFetches = new WeakMap<Page, { url: string; bytes: number }[]>();
/** The wasm modules each page (and its workers) fetched, with their sizes. */
const wasmFetches = new WeakMap<Page, { url: string; bytes: number }[]>();

/** Opens the page; `isolated: false` strips the COOP/COEP headers the preview server sends. */
async function openPage(b: Browser = browser, { isolated = true } = {}): Promise<Page> {
  const context = await b.newContext({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true });
  const page = await context.newPage();
  const fetched: { url: string; bytes: number }[] = [];
  mnistFetches.set(page, fetched);
  const modules: { url: string; bytes: number }[] = [];
  wasmFetches.set(page, modules);
  context.on('response', async (r) => {
    if (r.url().endsWith('.wasm')) modules.push({ url: r.url(), bytes: (await r.body().catch(() => Buffer.alloc(0))).length });
  });
  page.on('response', async (r) => {
    // Bytes on the wire: a server may send the .gz files with Content-Encoding: gzip (vite's
    // preview does), and then the body playwright hands back is already inflated.
    if (r.url().includes('/mnist/')) fetched.push({ url: r.url(), bytes: Number((await r.allHeaders())['content-length'] ?? Number.NaN) });
  });
  if (!isolated) {
    await page.route('**/*', async (route) => {
      const response = await route.fetch();
      const headers = { ...response.headers() };
      delete headers['cross-origin-opener-policy'];
      delete headers['cross-origin-embedder-policy'];
      await route.fulfill({ response, headers });
    });
  }
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') console.log(`[console] ${m.text()}`);
  });
  await page.goto(url);
  await waitReady(page);
  return page;
}

async function waitReady(page: Page): Promise<void> {
  await page.waitForFunction(() => (window as unknown as { __vat?: VatState }).__vat?.ready === true, null, { timeout: 180_000 });
}

async function waitPhase(page: Page, phases: string[], timeout = 480_000): Promise<string> {
  await page.waitForFunction((p) => p.includes((window as unknown as { __vat: VatState }).__vat.phase), phases, { timeout, polling: 250 });
  return vatState(page, 's.phase');
}

async function setForm(page: Page, values: Record<string, string | number>): Promise<void> {
  for (const [name, v] of Object.entries(values)) {
    const sel = `#options [name="${name}"]`;
    if ((await page.locator(sel).evaluate((e) => e.tagName)) === 'SELECT') await page.selectOption(sel, String(v));
    else await page.fill(sel, String(v));
  }
}

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'vat-web-'));
  const n = THRESHOLDS.TEST_SIZE;
  const images = await fs.readFile(path.join(MNIST_DIR, 't10k-images-idx3-ubyte'));
  const labels = await fs.readFile(path.join(MNIST_DIR, 't10k-labels-idx1-ubyte'));
  testImages = path.join(tmp, 'small-images-idx3-ubyte');
  testLabels = path.join(tmp, 'small-labels-idx1-ubyte');
  await fs.writeFile(testImages, idx(2051, [n, 28, 28], images.subarray(16, 16 + n * 784)));
  await fs.writeFile(testLabels, idx(2049, [n], labels.subarray(8, 8 + n)));
  const outDir = path.join(tmp, 'dist');
  const configFile = path.join(WEB, 'vite.config.ts');
  await build({ root: WEB, configFile, logLevel: 'warn', build: { outDir, emptyOutDir: true } });
  const port = await freePort();
  server = await preview({ root: WEB, configFile, logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port, strictPort: true, open: false } });
  url = `http://127.0.0.1:${port}/`;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: WEBGPU_FLAGS });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe('the web demo in headless Chromium', () => {
  it('loads MNIST from its own origin and finds the WebGPU adapter (SwiftShader here)', async () => {
    const page = await openPage();
    const s = await vatState(page, '({ probe: s.probe, data: s.data, phase: s.phase })');
    expect(s.probe.available).toBe(true);
    expect(s.probe.description).toMatch(/^WebGPU: /);
    // No GPU on these machines: Chromium's software adapter.
    expect(s.probe.description).toMatch(/swiftshader/i);
    expect(await page.textContent('#adapter')).toBe(s.probe.description);
    expect(s.data.train).toMatchObject({ count: 60000, rows: 28, cols: 28, source: 'MNIST' });
    expect(s.data.test).toMatchObject({ count: 10000, source: 'MNIST' });
    // Fetched gzipped: four .gz files, about 11 MB in all instead of 55 MB.
    const fetched = mnistFetches.get(page)!;
    expect(fetched.map((f) => f.url.split('/').pop()).sort()).toEqual([
      't10k-images-idx3-ubyte.gz',
      't10k-labels-idx1-ubyte.gz',
      'train-images-idx3-ubyte.gz',
      'train-labels-idx1-ubyte.gz',
    ]);
    expect(fetched.reduce((a, f) => a + f.bytes, 0)).toBeLessThan(15 * 2 ** 20);
    expect(s.phase).toBe('idle');
    expect(await page.inputValue('#options [name="backend"]')).toBe('webgpu');
    await page.context().close();
  });

  it('says plainly when there is no WebGPU and trains on the CPU backend instead', async () => {
    const plain = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: BASE_FLAGS });
    try {
      const page = await openPage(plain);
      expect(await page.isVisible('#no-webgpu')).toBe(true);
      expect(await page.textContent('#no-webgpu')).toMatch(/no WebGPU/);
      expect(await page.inputValue('#options [name="backend"]')).toBe('cpu');
      expect(await vatState(page, 's.probe.error.name')).toBe('BackendUnavailableError');

      // It trains there on the CPU backend; Stop ends the run and leaves nothing to resume.
      await setForm(page, { trainSize: 640, batchSize: 32, valSize: 100 });
      await page.click('#start');
      await page.waitForFunction(() => (window as unknown as { __vat: VatState }).__vat.step >= 2, null, { timeout: 120_000 });
      // The preview server sends COOP/COEP, so the worker runs the threaded module on every core.
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
      const cores = await page.evaluate(() => navigator.hardwareConcurrency);
      expect(await page.textContent('#adapter')).toBe(`CPU: vat-core kernels, WebAssembly, threaded, ${cores} threads`);
      expect(await vatState(page, 's.backend')).toBe('cpu');
      // The CPU path fetched only the threaded module (0.6 MB), never the 26 MB main one.
      const modules = wasmFetches.get(page)!;
      expect(modules.map((m) => m.bytes)).toEqual([expect.any(Number)]);
      expect(modules[0]!.bytes).toBeLessThan(2 * 2 ** 20);
      await page.click('#stop');
      expect(await waitPhase(page, ['stopped', 'failed'])).toBe('stopped');
      await page.waitForFunction(() => (window as unknown as { __vat: VatState }).__vat.storedRun === null);
      expect(await page.isDisabled('#resume')).toBe(true);
      expect(await vatState(page, 's.step')).toBeLessThan(20);
    } finally {
      await plain.close();
    }
  });

  it('without cross-origin isolation trains on one CPU thread and says why on the page', async () => {
    const page = await openPage(browser, { isolated: false });
    try {
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(false);
      await setForm(page, { trainSize: 320, batchSize: 32, valSize: 100, backend: 'cpu' });
      await page.click('#start');
      await page.waitForFunction(() => (window as unknown as { __vat: VatState }).__vat.step >= 1, null, { timeout: 120_000 });
      expect(await page.textContent('#adapter')).toBe('CPU: vat-core kernels, WebAssembly, 1 thread');
      expect(await page.textContent('#adapter-note')).toMatch(
        /one thread: the page is not cross-origin isolated \(it needs COOP same-origin and COEP require-corp headers\)/,
      );
      await page.click('#stop');
      expect(await waitPhase(page, ['stopped', 'failed'])).toBe('stopped');
    } finally {
      await page.context().close();
    }
  });

  describe('a run on WebGPU: train, pause, reload, resume, finish', () => {
    const { STEPS, BATCH, PAUSE_AT, TEST_SIZE, MIN_ACCURACY } = THRESHOLDS;
    let page: Page;
    /** What the run showed on the way; each test below checks one thing of it. */
    const seen: Record<string, unknown> = {};
    // biome-ignore lint/suspicious/noExplicitAny: the page's state, read as JSON
    let s: any;

    beforeAll(async () => {
      page = await openPage();
      await loadTestFiles(page);
      seen.dataStatus = await page.textContent('#data-status');
      await setForm(page, { preset: 'default' });
      await setForm(page, { trainSize: STEPS * BATCH, batchSize: BATCH, epochs: 1, valSize: 100, backend: 'webgpu', checkpointSeconds: 600 });
      await configureView(page);
      const started = Date.now();
      await page.click('#start');
      await waitPhase(page, ['training']);
      await page.waitForFunction((n) => (window as unknown as { __vat: VatState }).__vat.step >= n, PAUSE_AT, { timeout: 480_000, polling: 200 });
      await page.click('#pause');
      seen.pausePhase = await waitPhase(page, ['paused', 'failed']);
      seen.pausedAt = await vatState(page, 's.step');
      seen.storedAtPause = await vatState(page, 's.storedRun && s.storedRun.step');
      // A reload finds the checkpoint in IndexedDB; the run resumes only on the data it trained on.
      await page.reload();
      await waitReady(page);
      seen.storedAfterReload = await vatState(page, 's.storedRun && s.storedRun.step');
      seen.bannerVisible = await page.isVisible('#stored-run');
      await page.click('#resume-stored');
      await page.waitForSelector('#train-error[data-error-name="InvalidConfigError"]');
      seen.otherDataError = await page.textContent('#train-error');
      await loadTestFiles(page);
      await configureView(page);
      await page.click('#resume-stored');
      seen.endPhase = await waitPhase(page, ['done', 'failed']);
      const seconds = (Date.now() - started) / 1000;
      s = await vatState(
        page,
        '({ steps: s.steps, test: s.test, ips: s.imagesPerSecond, adapter: s.adapter, backend: s.backend, history: s.history, view: s.view, storedRun: s.storedRun })',
      );
      console.log(
        `trained ${STEPS} steps of ${BATCH} in ${seconds.toFixed(0)} s (with a reload); ${s.ips.toFixed(1)} img/s after the resume; ` +
          `test accuracy ${(100 * s.test.accuracy).toFixed(2)}% on ${s.test.count}; adapter ${s.adapter}`,
      );
    }, 900_000);

    afterAll(async () => {
      await page?.context().close();
    });

    it('loads the test files it is given', () => {
      expect(seen.dataStatus).toContain(`${TEST_SIZE} images from small-images-idx3-ubyte`);
    });

    it('pauses at a checkpoint that IndexedDB holds', () => {
      expect(seen.pausePhase).toBe('paused');
      expect(seen.pausedAt).toBeGreaterThanOrEqual(PAUSE_AT);
      expect(seen.storedAtPause).toBe(seen.pausedAt);
    });

    it('offers the stored run after a reload, and refuses to resume it on other data', () => {
      expect(seen.storedAfterReload).toBe(seen.pausedAt);
      expect(seen.bannerVisible).toBe(true);
      expect(seen.otherDataError).toMatch(/load the same data, then resume/);
    });

    it('resumes at the exact next step on WebGPU and finishes, leaving nothing to resume', async () => {
      expect(seen.endPhase).toBe('done');
      expect(s.backend).toBe('webgpu');
      expect(s.adapter).toMatch(/swiftshader/i);
      expect(s.steps[0].step).toBe(Number(seen.pausedAt) + 1);
      expect(s.steps.at(-1).step).toBe(STEPS);
      expect(s.ips).toBeGreaterThan(0);
      expect(Number(await page.textContent('#ips'))).toBeGreaterThan(0);
      expect(s.history).toHaveLength(1);
      expect(s.storedRun).toBeNull();
    });

    it('reaches the accuracy threshold on the test files, with a whole confusion matrix', async () => {
      expect(s.test.count).toBe(TEST_SIZE);
      expect(s.test.accuracy).toBeGreaterThan(MIN_ACCURACY);
      expect(Number(await page.getAttribute('#test-result', 'data-accuracy'))).toBe(s.test.accuracy);
      expect(s.test.confusion.reduce((a: number, b: number) => a + b, 0)).toBe(TEST_SIZE);
    });

    it('draws CE and LDS per step and the accuracy per epoch as SVG', async () => {
      expect(await page.locator('#loss-chart polyline').count()).toBe(2);
      expect(await page.locator('#acc-chart circle').count()).toBeGreaterThanOrEqual(3);
    });

    it('shows r_adv of norm eps per sample, with the KL of the two distributions it shows', async () => {
      const view = s.view;
      expect(view.samples.map((x: { index: number }) => x.index)).toEqual([0, 1, 2, 3]);
      for (const sample of view.samples) {
        expect(Math.abs(sample.norm - view.eps) / view.eps).toBeLessThan(1e-3);
        expect(sample.kl).toBeGreaterThanOrEqual(0);
      }
      const meanKl = view.samples.reduce((a: number, x: { kl: number }) => a + x.kl, 0) / view.samples.length;
      expect(Math.abs(meanKl - view.lds)).toBeLessThan(1e-4 + 0.05 * view.lds);
      expect(await page.locator('#vat-view .vat-row').count()).toBe(4);
      expect(Number(await page.locator('#vat-view .vat-row').first().getAttribute('data-norm'))).toBeCloseTo(view.eps, 3);
      expect(view.grid).toHaveLength(48);
      expect(view.monitor.confusion.reduce((a: number, b: number) => a + b, 0)).toBe(48);
    });

    it('updates the view with a sample chosen from the grid', async () => {
      const before = await vatState(page, 's.viewCount');
      await page.click('#grid', { position: { x: 58 * 5 + 20, y: 20 } });
      await page.waitForFunction((n) => (window as unknown as { __vat: VatState }).__vat.viewCount > n, before);
      expect(await vatState(page, 's.view.samples[0].index')).toBe(5);
      expect(Math.abs((await vatState(page, 's.view.samples[0].norm')) - s.view.eps) / s.view.eps).toBeLessThan(1e-3);
    });

    it('reads a vertical stroke on the drawing pad, reduced as MNIST was, as a 1', async () => {
      await page.locator('#pad').scrollIntoViewIfNeeded();
      const box = (await page.locator('#pad').boundingBox())!;
      await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.15);
      await page.mouse.down();
      for (let k = 1; k <= 10; k++) await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * (0.15 + 0.07 * k));
      await page.mouse.up();
      await page.waitForFunction(() => (window as unknown as { __vat: VatState }).__vat.draw !== undefined);
      const draw = await vatState(page, 's.draw');
      expect(draw.probs).toHaveLength(10);
      expect(draw.probs.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 4);
      expect(draw.prediction).toBe(1);
    });

    it('downloads weights that vat eval (CPU) scores the same as the page did', async () => {
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      const file = path.join(tmp, 'page-weights.safetensors');
      await download.saveAs(file);
      const cli = await cliEval(file, ['--test-images', testImages, '--test-labels', testLabels]);
      console.log(`page (WebGPU) ${s.test.accuracy} vs vat eval (CPU) ${cli.accuracy} on ${cli.count} images`);
      expect(cli.count).toBe(s.test.count);
      expect(cli.accuracy).toBe(s.test.accuracy);
    });
  });

  it('scores CLI-trained weights as `vat eval` does, on test idx files loaded by the user', async () => {
    const out = path.join(tmp, 'cli-run');
    const r = await vat(['train', '--backend', 'cpu', '--train-size', '128', '--val-size', '64', '--batch-size', '32', '--epochs', '1', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const weights = path.join(out, 'weights.safetensors');
    const n = THRESHOLDS.TEST_SIZE;
    const cli = await cliEval(weights, ['--test-images', testImages, '--test-labels', testLabels]);

    const page = await openPage();
    await loadTestFiles(page);
    await configureView(page);
    await page.setInputFiles('#weights-file', weights);
    await page.waitForSelector('#weights-status[data-accuracy]', { timeout: 300_000 });
    const e = await vatState(page, 's.evaluation');
    console.log(`CLI-trained weights: page (WebGPU) ${e.accuracy} vs vat eval (CPU) ${cli.accuracy} on ${cli.count} images`);
    expect(e.count).toBe(n);
    expect(cli.count).toBe(n);
    expect(e.accuracy).toBe(cli.accuracy);
    expect(await vatState(page, 's.backend')).toBe('webgpu');
    await page.context().close();
  });

  it('explains corrupt weights and idx files', async () => {
    const page = await openPage();
    const upload = async (selector: string, name: string, bytes: Buffer) =>
      page.setInputFiles(selector, { name, mimeType: 'application/octet-stream', buffer: bytes });

    // Weights: not safetensors at all, then a real header with the tensor data cut off.
    await upload('#weights-file', 'notes.safetensors', Buffer.from('these are not weights'));
    await page.waitForSelector('#weights-error[data-error-name="WeightsFormatError"]');
    expect(await page.textContent('#weights-error')).toMatch(/^WeightsFormatError: .*not a safetensors file/);
    const header = Buffer.from(JSON.stringify({ 'conv1.weight': { dtype: 'F32', shape: [32, 1, 3, 3], data_offsets: [0, 1152] } }));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    await upload('#weights-file', 'cut.safetensors', Buffer.concat([len, header, Buffer.alloc(100)]));
    await page.waitForFunction(() => document.querySelector('#weights-status')?.textContent === 'Could not load cut.safetensors.');
    expect(await vatState(page, 's.errors.weights.name')).toBe('WeightsFormatError');
    expect(await page.textContent('#weights-error')).toMatch(/^WeightsFormatError: /);

    // idx: a labels file given as images (wrong magic), then a truncated images file.
    const labels = await fs.readFile(path.join(MNIST_DIR, 't10k-labels-idx1-ubyte'));
    const images = await fs.readFile(path.join(MNIST_DIR, 't10k-images-idx3-ubyte'));
    await upload('#test-images', 'labels-as-images', labels);
    await upload('#test-labels', 'labels', labels);
    await page.click('#load-files');
    await page.waitForSelector('#data-error[data-error-name="InvalidInputError"]');
    expect(await page.textContent('#data-error')).toMatch(/magic number 2049 is not 2051; is this an idx images file/);
    await upload('#test-images', 'truncated-images', images.subarray(0, 16 + 5000 * 784 - 10));
    await page.click('#load-files');
    await page.waitForFunction(() => document.querySelector('#data-error')?.textContent?.includes('truncated or corrupt'));
    expect(await page.textContent('#data-error')).toMatch(/^InvalidInputError: test set .*truncated or corrupt/);
    // The data in use is still MNIST's.
    expect(await vatState(page, 's.data.test.count')).toBe(10000);
    await page.context().close();
  });

  it('takes a dropped CSV or a folder of class subfolders, holds out a tenth when it has no test set, and names a bad row', async () => {
    const page = await openPage();
    const images = await fs.readFile(path.join(MNIST_DIR, 't10k-images-idx3-ubyte'));
    const labels = await fs.readFile(path.join(MNIST_DIR, 't10k-labels-idx1-ubyte'));
    const pixels = (n: number) => images.subarray(16 + n * 784, 16 + (n + 1) * 784);
    // A Kaggle-layout CSV of 200 test digits: 180 to train on, 20 held out.
    const rows = Array.from({ length: 200 }, (_, n) => [labels[8 + n], ...pixels(n)].join(','));
    const csv = `label,${Array.from({ length: 784 }, (_, i) => `pixel${i}`).join(',')}\n${rows.join('\n')}\n`;
    await page.setInputFiles('#data-files', { name: 'digits.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await page.waitForFunction(() => (window as unknown as { __vat: VatState }).__vat.data?.test.count === 20);
    expect(await vatState(page, 's.data.train.count')).toBe(180);
    expect(await page.textContent('#data-status')).toMatch(/180 images from digits\.csv \(a tenth held out as the test set\)/);
    // A folder with train/ and test/ of class subfolders of grey PNGs: both sets, no hold-out.
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'vat-web-folder-'));
    let counts = { train: 0, test: 0 };
    for (let n = 0; n < 60; n++) {
      const digit = labels[8 + n]!;
      if (digit > 1) continue;
      const which = n % 4 === 0 ? 'test' : 'train';
      const dir = path.join(root, 'digits', which, digit === 0 ? 'zero' : 'one');
      await fs.mkdir(dir, { recursive: true });
      const png = new PNG({ width: 28, height: 28 });
      for (let p = 0; p < 784; p++) png.data.set([pixels(n)[p]!, pixels(n)[p]!, pixels(n)[p]!, 255], p * 4);
      await fs.writeFile(path.join(dir, `${n}.png`), PNG.sync.write(png));
      counts = { ...counts, [which]: counts[which] + 1 };
    }
    await page.setInputFiles('#data-folder', path.join(root, 'digits'));
    await page.waitForFunction((n) => (window as unknown as { __vat: VatState }).__vat.data?.train.count === n, counts.train);
    expect(await vatState(page, 's.data.test.count')).toBe(counts.test);
    expect(await page.textContent('#data-status')).toMatch(/2 classes: one, zero/);
    // A ragged row is named; the data in use stays what it was.
    await page.setInputFiles('#data-files', { name: 'bad.csv', mimeType: 'text/csv', buffer: Buffer.from('1,2,3,4,5\n1,2,3\n') });
    await page.waitForSelector('#data-error[data-error-name="InvalidInputError"]');
    expect(await page.textContent('#data-error')).toMatch(/bad\.csv, line 2: 3 columns, but line 1 has 5/);
    expect(await vatState(page, 's.data.train.count')).toBe(counts.train);
    await page.context().close();
  });

  it('trains a model spec from a JSON file on a dropped folder of colour PNGs, on the CPU backend, and shows r_adv in colour', async () => {
    const page = await openPage();
    try {
      // Three classes of 12x10 RGB images: a bright red, green or blue square on noise.
      const root = await fs.mkdtemp(path.join(os.tmpdir(), 'vat-web-colour-'));
      let seed = 3;
      const rnd = () => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed / 2147483648;
      };
      for (const [k, name] of ['blue', 'green', 'red'].entries()) {
        await fs.mkdir(path.join(root, 'colour', name), { recursive: true });
        for (let i = 0; i < 40; i++) {
          const png = new PNG({ width: 12, height: 10 });
          const [ox, oy] = [Math.floor(rnd() * 6), Math.floor(rnd() * 4)];
          for (let p = 0; p < 120; p++) {
            const inside = p % 12 >= ox && p % 12 < ox + 6 && Math.floor(p / 12) >= oy && Math.floor(p / 12) < oy + 6;
            for (let c = 0; c < 3; c++) png.data[p * 4 + c] = Math.floor(rnd() * 60) + (inside && c === 2 - k ? 190 : 0);
            png.data[p * 4 + 3] = 255;
          }
          await fs.writeFile(path.join(root, 'colour', name, `${i}.png`), PNG.sync.write(png));
        }
      }
      await page.setInputFiles('#data-folder', path.join(root, 'colour'));
      await page.waitForFunction(() => (window as unknown as { __vat: VatState }).__vat.data?.train.count === 108);
      expect(await page.textContent('#data-status')).toMatch(/Images: 3x10x12/);
      expect(await page.textContent('#draw-note')).toMatch(/28x28 grey digits; these images are 3x10x12/);
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
      await page.setInputFiles('#model-spec', { name: 'model.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(spec)) });
      await page.waitForFunction(() => document.querySelector('#model-description')?.textContent?.includes('model.json: 6 layers'));
      // The preset model list comes from the core.
      expect(await page.locator('#model option').allTextContents()).toEqual(expect.arrayContaining(['seed-cnn', 'mlp-1200-1200', 'conv-small', 'conv-large']));
      await setForm(page, { epochs: 6, batchSize: 16, valSize: 0, trainSize: '', lr: 0.01, backend: 'webgpu' });
      await page.check('#standardize');
      await configureView(page);
      await page.click('#start');
      expect(await waitPhase(page, ['done', 'failed'])).toBe('done');
      // biome-ignore lint/suspicious/noExplicitAny: the page's state, read as JSON
      const s: any = await vatState(page, '({ test: s.test, backend: s.backend, view: s.view })');
      // The spec trains on the backend asked for: the burn graph builds any model.
      expect(s.backend).toBe('webgpu');
      expect(s.test.count).toBe(12);
      expect(s.test.accuracy).toBeGreaterThan(0.6);
      expect(s.view.samples[0].shape).toEqual([3, 10, 12]);
      // Standardised inputs: the downloaded weights carry each channel's mean and std, and the
      // view's r_adv (eps 1 on the standardised input) is shown on the pixels, times the stds.
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      const file = path.join(root, 'colour.safetensors');
      await download.saveAs(file);
      const bytes = await fs.readFile(file);
      const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString());
      const norm = JSON.parse(header.__metadata__.model_config).normalization;
      expect(norm.mean).toHaveLength(3);
      expect(norm.std.every((v: number) => v > 0.05 && v < 0.5)).toBe(true);
      expect(s.view.samples[0].norm).toBeLessThan(0.5);
    } finally {
      await page.context().close();
    }
  });
});
