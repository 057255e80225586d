#!/usr/bin/env node
// `pnpm bench`: the seed CNN trained with and without VAT, at batch 128 by default, on every
// implementation this project has, in one run:
//   burn-flex in wasm (the CPU path before the crate had kernels of its own: the baseline every
//   ratio is taken against), in Node and in headless Chromium;
//   the crate's CPU kernels in the native addon on 1, 2 and every core, in wasm in Node, and in
//   Chromium's threaded module (a worker of a cross-origin isolated page) on 1, 2 and every core;
//   burn WebGPU (Node, through Dawn, and in Chromium); the tfjs reference in the same Chromium on
//   its webgpu and webgl backends; and PyTorch on the CPU where `import torch` works (the project
//   does not install it: set TORCH_PYTHON to a python that has it, default python3).
// Each run is a fresh process (Node, Python) or a fresh browser (Chromium), so its peak memory is
// its own. Prints a markdown table and writes bench.json and bench.md (write, then rename).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { writeFileAtomic } from '@vat/core/node';

import { benchData } from './data.js';
import type { RunResult, RunSpec } from './measure.js';
import { peakRssTree } from './memory.js';
import { summarize } from './measure.js';
import { type BenchReport, type PageLoad, type PageLoadTimes, type RunRecord, markdown } from './report.js';

const PKG = fileURLToPath(new URL('..', import.meta.url));
const ROOT = path.resolve(PKG, '../..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// The launch flags that work on these machines (docs/platform.md; the tests share theirs in
// test/support/chromium.ts, this built program keeps its own). WebGPU needs the first; WebGL
// on a machine without a GPU needs SwiftShader's GL, which recent Chromium enables only on request.
const CHROMIUM_FLAGS = [
  '--enable-unsafe-webgpu',
  '--enable-unsafe-swiftshader',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

const TORCH_PYTHON = process.env.TORCH_PYTHON ?? 'python3';
const ALL_CORES = os.availableParallelism();
/** 1, 2 and every core, without repeats. */
const THREADS = [...new Set([1, 2, ALL_CORES])].sort((a, b) => a - b);

type Target = Pick<RunSpec, 'impl' | 'backend' | 'host' | 'engine' | 'threads'>;

/** Every implementation, in the order of the table. */
const TARGETS: Record<string, Target> = {
  'burn-flex-wasm-node': { impl: 'vat', backend: 'burn-cpu', host: 'node', engine: 'wasm', threads: 1 },
  ...Object.fromEntries(THREADS.map((t) => [`vat-cpu-native-node-${t}t`, { impl: 'vat', backend: 'cpu', host: 'node', engine: 'native', threads: t }])),
  'vat-cpu-wasm-node': { impl: 'vat', backend: 'cpu', host: 'node', engine: 'wasm', threads: 1 },
  'burn-flex-wasm-chromium': { impl: 'vat', backend: 'burn-cpu', host: 'chromium', threads: 1 },
  ...Object.fromEntries(THREADS.map((t) => [`vat-cpu-wasm-chromium-${t}t`, { impl: 'vat', backend: 'cpu', host: 'chromium-worker', threads: t }])),
  'burn-webgpu-node': { impl: 'vat', backend: 'webgpu', host: 'node' },
  'burn-webgpu-chromium': { impl: 'vat', backend: 'webgpu', host: 'chromium' },
  'tfjs-webgpu-chromium': { impl: 'tfjs', backend: 'webgpu', host: 'chromium' },
  'tfjs-webgl-chromium': { impl: 'tfjs', backend: 'webgl', host: 'chromium' },
  ...Object.fromEntries(THREADS.map((t) => [`torch-cpu-${t}t`, { impl: 'torch', backend: 'cpu', host: 'python', threads: t }])),
};
/** Every ratio is taken against this row: the CPU path as it was before the crate's kernels. */
export const BASELINE = 'burn-flex-wasm-node';

let torch: boolean | undefined;
/** Whether `import torch` works with TORCH_PYTHON (checked once). */
function torchAvailable(): boolean {
  // From the temp directory: in this package, `import torch` would find packages/bench/torch/.
  torch ??= spawnSync(TORCH_PYTHON, ['-c', 'import torch.nn'], { stdio: 'ignore', cwd: os.tmpdir() }).status === 0;
  return torch;
}

const HELP = `usage: pnpm bench [options]

  --only LIST         comma-separated targets (default: all; torch-* only where
                      \`import torch\` works): ${Object.keys(TARGETS).join(', ')}
  --modes LIST        plain,vat (default: both)
  --batch N           batch size (default 128, the seed's)
  --warmup N          unmeasured steps first (default 1; the first compiles shaders)
  --min-steps N       measured steps at least (default 3)
  --min-seconds S     and measure for at least S seconds (default 10)
  --max-steps N       but never more than N measured steps (default 20)
  --data-size N       MNIST training images cycled through (default 1024)
  --seed N            seed for weights and VAT directions (default 1)
  --web-demo LIST     time the web demo from page load to its first step on these backends
                      (cpu,webgpu; default: both when every target runs, none with --only)
  --out DIR           where bench.json and bench.md go (default bench-results)
  -h, --help`;

class UsageError extends Error {
  override name = 'UsageError';
}

function positiveInt(name: string, v: string | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got '${v}'`);
  return n;
}

function list<T extends string>(name: string, v: string | undefined, allowed: readonly T[]): T[] {
  if (v === undefined) return [...allowed];
  const items = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = items.filter((s) => !(allowed as readonly string[]).includes(s));
  if (bad.length || !items.length) throw new UsageError(`--${name}: unknown ${bad.length ? `'${bad.join("', '")}'` : 'empty list'}; use ${allowed.join(', ')}`);
  return items as T[];
}

interface Options {
  targets: string[];
  webDemo: ('cpu' | 'webgpu')[];
  modes: ('plain' | 'vat')[];
  base: Omit<RunSpec, 'impl' | 'backend' | 'host' | 'vat'>;
  dataSize: number;
  out: string;
}

function parseFlags(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    options: {
      only: { type: 'string' },
      modes: { type: 'string' },
      batch: { type: 'string' },
      warmup: { type: 'string' },
      'min-steps': { type: 'string' },
      'min-seconds': { type: 'string' },
      'max-steps': { type: 'string' },
      'data-size': { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      'web-demo': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function parseOptions(argv: string[]): Options | 'help' {
  let values: ReturnType<typeof parseFlags>['values'];
  try {
    ({ values } = parseFlags(argv));
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${HELP}`);
  }
  if (values.help) return 'help';
  const base = {
    batch: positiveInt('batch', values.batch, 128),
    warmup: positiveInt('warmup', values.warmup, 1, 0),
    minSteps: positiveInt('min-steps', values['min-steps'], 3),
    minSeconds: positiveInt('min-seconds', values['min-seconds'], 10, 0),
    maxSteps: positiveInt('max-steps', values['max-steps'], 20),
    seed: positiveInt('seed', values.seed, 1, 0),
  };
  if (base.maxSteps < base.minSteps) throw new UsageError(`--max-steps (${base.maxSteps}) is below --min-steps (${base.minSteps})`);
  const dataSize = positiveInt('data-size', values['data-size'], 1024);
  if (dataSize < base.batch) throw new UsageError(`--data-size (${dataSize}) must hold at least one batch (${base.batch})`);
  const all = Object.keys(TARGETS);
  const targets = list('only', values.only, all);
  if (values.only === undefined && !torchAvailable()) {
    process.stderr.write(`no PyTorch row: \`${TORCH_PYTHON} -c "import torch"\` failed (set TORCH_PYTHON to a python with torch)\n`);
  }
  const webDemo =
    values['web-demo'] !== undefined
      ? list('web-demo', values['web-demo'], ['cpu', 'webgpu'] as const)
      : values.only === undefined
        ? (['cpu', 'webgpu'] as const).slice()
        : [];
  return {
    webDemo,
    targets: values.only === undefined && !torchAvailable() ? targets.filter((t) => TARGETS[t]!.impl !== 'torch') : targets,
    modes: list('modes', values.modes, ['plain', 'vat'] as const),
    base,
    dataSize,
    out: path.resolve(process.env.INIT_CWD ?? process.cwd(), values.out ?? 'bench-results'),
  };
}

/** A Node run in a child process (src/node-run.ts). */
function runNode(spec: RunSpec, dataSize: number): Promise<{ result: RunResult; peakBytes: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(PKG, 'dist/node-run.js'), JSON.stringify(spec), String(dataSize)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      process.stderr.write(d);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(JSON.parse(stdout.trim().split('\n').pop()!));
      else reject(new Error(stderr.trim().split('\n').pop() || `exit code ${code}`));
    });
  });
}

/** A PyTorch run (torch/seed_step.py) on the bench data, written to `dataDir` once. */
async function runTorch(spec: RunSpec, data: { x: Float32Array; y: Uint32Array }, dataDir: string): Promise<{ result: RunResult; peakBytes: number | null }> {
  const x = path.join(dataDir, 'x.bin');
  const y = path.join(dataDir, 'y.bin');
  if (!existsSync(x)) {
    await fs.writeFile(x, new Uint8Array(data.x.buffer, data.x.byteOffset, data.x.byteLength));
    await fs.writeFile(y, new Uint8Array(data.y.buffer, data.y.byteOffset, data.y.byteLength));
  }
  const args = { ...spec, x, y, count: data.y.length };
  return new Promise((resolve, reject) => {
    const child = spawn(TORCH_PYTHON, [path.join(PKG, 'torch/seed_step.py'), JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      process.stderr.write(d);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(stderr.trim().split('\n').pop() || `exit code ${code}`));
      const r = JSON.parse(stdout.trim().split('\n').pop()!) as Pick<RunResult, 'adapter' | 'warmupMs' | 'stepMs' | 'firstLoss' | 'lastLoss'> & {
        peakBytes: number;
      };
      resolve({ result: summarize(spec, r.adapter, r.warmupMs, r.stepMs, [r.firstLoss, r.lastLoss]), peakBytes: r.peakBytes });
    });
  });
}

interface PageServer {
  url: string;
  close(): Promise<void>;
}

/** vite's dev server for bench.html, with the bench data under /bench-data/. */
async function servePage(x: Float32Array, y: Uint32Array): Promise<PageServer> {
  const { createServer } = await import('vite');
  const files: Record<string, Uint8Array> = {
    '/bench-data/x.bin': new Uint8Array(x.buffer, x.byteOffset, x.byteLength),
    '/bench-data/y.bin': new Uint8Array(y.buffer, y.byteOffset, y.byteLength),
  };
  const server = await createServer({
    configFile: path.join(PKG, 'vite.config.ts'),
    server: { host: '127.0.0.1', port: 0, strictPort: false },
    plugins: [
      {
        name: 'bench-data',
        configureServer(s) {
          s.middlewares.use((req, res, next) => {
            const body = files[req.url?.split('?')[0] ?? ''];
            if (!body) return next();
            res.setHeader('Content-Type', 'application/octet-stream');
            res.end(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
          });
        },
      },
    ],
  });
  await server.listen();
  const addr = server.httpServer!.address() as { port: number };
  return { url: `http://127.0.0.1:${addr.port}/bench.html`, close: () => server.close() };
}

/** A Chromium run in a fresh browser; its peak memory is summed over the browser's processes. */
async function runChromium(spec: RunSpec, page: PageServer): Promise<{ result: RunResult; peakBytes: number | null; browserVersion: string }> {
  const { chromium } = await import('playwright-core');
  const server = await chromium.launchServer({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, headless: true });
  try {
    const browser = await chromium.connect(server.wsEndpoint());
    const tab = await browser.newPage();
    const errors: string[] = [];
    tab.on('pageerror', (e) => errors.push(e.message));
    tab.on('console', (m) => {
      const t = m.text();
      const p = t.match(/^bench-progress (\w+) (\d+) ([\d.]+)/);
      if (p) process.stderr.write(`  ${p[1]} step ${p[2]}: ${(Number(p[3]) / 1000).toFixed(2)} s\n`);
      else if (m.type() === 'error') errors.push(t);
    });
    const loadAndRun = async (): Promise<RunResult> => {
      await tab.goto(page.url);
      await tab.waitForSelector('body[data-ready="1"]', { timeout: 120_000 }).catch(() => {
        throw new Error(`the bench page did not load: ${errors.join('; ') || 'no error reported'}`);
      });
      return tab.evaluate((s) => window.__bench.run(s), spec);
    };
    let result: RunResult;
    try {
      result = await loadAndRun();
    } catch (err) {
      // A page reloaded under the run (vite's dev server does that when it re-optimises
      // dependencies) is measured again from the start; any other error is the run's.
      if (!/Execution context was destroyed|navigation/i.test((err as Error).message)) throw err;
      process.stderr.write('  the page reloaded during the run; measuring again\n');
      result = await loadAndRun();
    }
    const peakBytes = peakRssTree(server.process().pid!) ?? null;
    const browserVersion = browser.version();
    await browser.close();
    return { result, peakBytes, browserVersion };
  } finally {
    await server.close();
  }
}

/**
 * The web demo as a user meets it: its production build (packages/web/dist) served by `vite
 * preview` on localhost, opened in a fresh headless Chromium, Start pressed on the default preset
 * as soon as the page is ready. Times are the page's own clock (performance.now(), 0 = navigation).
 */
async function runWebDemo(backend: 'cpu' | 'webgpu'): Promise<PageLoadTimes> {
  const { preview } = await import('vite');
  const WEB = path.resolve(PKG, '../web');
  const server = await preview({
    root: WEB,
    configFile: path.join(WEB, 'vite.config.ts'),
    logLevel: 'warn',
    preview: { host: '127.0.0.1', port: 0, open: false },
  });
  const url = server.resolvedUrls!.local[0]!;
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, headless: true });
  try {
    const page = await browser.newPage();
    const at = () => page.evaluate(() => performance.now());
    const state = (expr: string) => page.waitForFunction(expr, null, { timeout: 300_000, polling: 20 });
    await page.goto(url);
    await state('window.__vat?.ready === true');
    const readyMs = await at();
    await page.selectOption('#options [name="backend"]', backend);
    await page.click('#start');
    await state("window.__vat.phase === 'training'");
    const trainingMs = await at();
    await state('window.__vat.step >= 1');
    const firstStepMs = await at();
    const adapter = String(await page.evaluate('window.__vat.adapter'));
    await page.click('#stop');
    return { backend, adapter, readyMs, trainingMs, firstStepMs };
  } finally {
    await browser.close();
    await server.close();
  }
}

function machine(): BenchReport['machine'] {
  const cpus = os.cpus();
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    if (execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim()) commit += '+changes';
  } catch {
    /* not a git checkout */
  }
  return {
    cpu: `${cpus[0]?.model ?? 'unknown CPU'} x ${cpus.length}`,
    cores: ALL_CORES,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    commit,
  };
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts === 'help') {
    console.log(HELP);
    return 0;
  }
  const started = new Date();
  const data = await benchData(opts.dataSize);
  const needPage = opts.targets.some((t) => TARGETS[t]!.host.startsWith('chromium'));
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'vat-bench-data-'));
  const page = needPage ? await servePage(data.x, data.y) : undefined;
  const runs: RunRecord[] = [];
  const pageLoads: PageLoad[] = [];
  let browserVersion: string | undefined;
  const jobs = opts.targets.flatMap((t) => opts.modes.map((m) => ({ target: t, vat: m === 'vat' })));
  const t0 = performance.now();
  try {
    for (const [k, job] of jobs.entries()) {
      const spec: RunSpec = { ...TARGETS[job.target]!, ...opts.base, vat: job.vat };
      const done = performance.now() - t0;
      const eta = k ? ` (about ${Math.round(((done / k) * (jobs.length - k)) / 60_000)} min left)` : '';
      process.stderr.write(`[${k + 1}/${jobs.length}] ${job.target} ${job.vat ? 'VAT' : 'plain'}, batch ${spec.batch}${eta}\n`);
      try {
        if (spec.host === 'node') {
          const r = await runNode(spec, opts.dataSize);
          runs.push({ target: job.target, ...r });
        } else if (spec.host === 'python') {
          const r = await runTorch(spec, data, dataDir);
          runs.push({ target: job.target, ...r });
        } else {
          const r = await runChromium(spec, page!);
          browserVersion = r.browserVersion;
          runs.push({ target: job.target, result: r.result, peakBytes: r.peakBytes });
        }
        const last = runs[runs.length - 1]!.result!;
        process.stderr.write(`  ${last.adapter}: ${last.medianMs.toFixed(0)} ms/step, ${last.imgPerSec.toFixed(1)} img/s\n`);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        process.stderr.write(`  failed: ${message}\n`);
        runs.push({ target: job.target, spec, error: message, peakBytes: null });
      }
    }
    for (const backend of opts.webDemo) {
      process.stderr.write(`[web demo] page load to the first step, backend ${backend}\n`);
      try {
        const r = await runWebDemo(backend);
        process.stderr.write(
          `  ready ${(r.readyMs / 1000).toFixed(1)} s, training ${(r.trainingMs / 1000).toFixed(1)} s, first step ${(r.firstStepMs / 1000).toFixed(1)} s (${r.adapter})\n`,
        );
        pageLoads.push(r);
      } catch (err) {
        process.stderr.write(`  failed: ${(err as Error).message}\n`);
        pageLoads.push({ backend, error: (err as Error).message });
      }
    }
  } finally {
    await page?.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
  const report: BenchReport = {
    started: started.toISOString(),
    wallSeconds: Math.round((performance.now() - t0) / 1000),
    command: `pnpm bench ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { ...machine(), chromium: browserVersion },
    options: { ...opts.base, dataSize: opts.dataSize },
    baseline: BASELINE,
    runs,
    pageLoads,
  };
  const md = markdown(report);
  await fs.mkdir(opts.out, { recursive: true });
  await writeFileAtomic(path.join(opts.out, 'bench.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFileAtomic(path.join(opts.out, 'bench.md'), md);
  console.log(md);
  console.error(`wrote ${path.join(opts.out, 'bench.json')} and bench.md`);
  const failed = [...runs, ...pageLoads].filter((r) => r.error);
  if (failed.length) console.error(`${failed.length} run(s) failed: ${failed.map((r) => ('target' in r ? r.target : `web demo ${r.backend}`)).join(', ')}`);
  return failed.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof UsageError ? `error: ${err.message}` : err instanceof Error ? `${err.name}: ${err.message}` : String(err));
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
