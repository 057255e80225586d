// Takes docs/web-demo.png: builds the page, serves it with `vite preview`, trains a short run
// on WebGPU in headless Chromium (SwiftShader here), draws a digit, and screenshots the page.
// The charts are SVG and the images 2D canvas, so the headless screenshot shows them.
//   pnpm --filter web screenshot [out.png]
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';
import { build, preview } from 'vite';

const web = fileURLToPath(new URL('..', import.meta.url));
const out = path.resolve(process.argv[2] ?? path.join(web, '../../docs/web-demo.png'));
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'vat-shot-'));
const configFile = path.join(web, 'vite.config.ts');
await build({ root: web, configFile, logLevel: 'warn', build: { outDir: path.join(tmp, 'dist'), emptyOutDir: true } });
const server = await preview({
  root: web,
  configFile,
  logLevel: 'warn',
  build: { outDir: path.join(tmp, 'dist') },
  preview: { host: '127.0.0.1', port: 4179 },
});
const url = server.resolvedUrls.local[0];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  headless: true,
  args: [
    '--enable-unsafe-webgpu',
    '--no-sandbox',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
    '--headless',
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  await page.goto(url);
  await page.waitForFunction(() => window.__vat?.ready === true, null, { timeout: 180_000 });
  // 2 epochs of 16 steps: enough points for the charts, about 8 minutes on SwiftShader (2 cores),
  // 3 of them for the final evaluation on the 10,000 test images. SHOT_OPTIONS (JSON) overrides.
  const options = { trainSize: 512, batchSize: 32, epochs: 2, valSize: 200, ...JSON.parse(process.env.SHOT_OPTIONS ?? '{}') };
  for (const [k, v] of Object.entries(options)) {
    const sel = `#options [name="${k}"]`;
    if (k === 'backend' || k === 'optimizer' || k === 'preset') await page.selectOption(sel, String(v));
    else await page.fill(sel, String(v));
  }
  for (const [id, v] of [
    ['refresh-every', '4'],
    ['monitor-size', '100'],
  ]) {
    await page.fill(`#${id}`, v);
    await page.dispatchEvent(`#${id}`, 'change');
  }
  await page.click('#start');
  await page.waitForFunction(() => ['done', 'failed'].includes(window.__vat.phase), null, { timeout: 1_800_000, polling: 500 });
  console.log(`phase ${await page.evaluate(() => window.__vat.phase)}, ${await page.textContent('#test-result')}`);
  // Draw a 7 on the pad.
  await page.locator('#pad').scrollIntoViewIfNeeded();
  const box = await page.locator('#pad').boundingBox();
  const at = (x, y) => [box.x + box.width * x, box.y + box.height * y];
  await page.mouse.move(...at(0.25, 0.22));
  await page.mouse.down();
  for (const [x, y] of [
    [0.45, 0.22],
    [0.72, 0.22],
    [0.62, 0.45],
    [0.52, 0.65],
    [0.45, 0.82],
  ])
    await page.mouse.move(...at(x, y), { steps: 6 });
  await page.mouse.up();
  await page.waitForFunction(() => window.__vat.draw !== undefined);
  await fs.mkdir(path.dirname(out), { recursive: true });
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await server.close();
  await fs.rm(tmp, { recursive: true, force: true });
}
