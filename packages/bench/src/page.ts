// The benchmark inside Chromium: the vat-core crate (through @vat/core: burn on navigator.gpu,
// burn-flex, and the CPU kernels, threaded in a worker) and the tfjs reference (webgpu and webgl
// backends), measured by the same loop as in Node. main.ts opens this page in a fresh browser
// for each run and calls window.__bench.run(spec).
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';

import { type BenchData, type RunResult, type RunSpec, runSpec } from './measure.js';

async function fetchBytes(url: string): Promise<ArrayBuffer> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.arrayBuffer();
}

async function loadData(): Promise<BenchData> {
  const x = new Float32Array(await fetchBytes('/bench-data/x.bin'));
  const y = new Uint32Array(await fetchBytes('/bench-data/y.bin'));
  return { x, y, count: y.length, pixels: x.length / y.length };
}

function webglRenderer(): string {
  const gl = document.createElement('canvas').getContext('webgl2');
  if (!gl) return 'no WebGL2 context';
  const ext = gl.getExtension('WEBGL_debug_renderer_info');
  return String(ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER));
}

async function describeTfjs(): Promise<string> {
  const name = tf.getBackend();
  if (name === 'webgl') return `tfjs ${tf.version.tfjs} webgl: ${webglRenderer()}`;
  if (name === 'webgpu') {
    const info = (tf.backend() as unknown as { adapterInfo?: Record<string, unknown> }).adapterInfo;
    const parts = info ? Object.values(info).filter((v) => typeof v === 'string' && v.length) : [];
    return `tfjs ${tf.version.tfjs} webgpu: ${parts.join(' / ') || 'adapter'}`;
  }
  return `tfjs ${tf.version.tfjs} ${name}`;
}

declare global {
  interface Window {
    __bench: { run(spec: RunSpec): Promise<RunResult> };
  }
}

/** Runs `spec` in a fresh Web Worker (src/worker.ts). */
function inWorker(spec: RunSpec, data: BenchData): Promise<RunResult> {
  if (!globalThis.crossOriginIsolated) throw new Error('the bench page is not cross-origin isolated, so the threaded module cannot run');
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
  return new Promise<RunResult>((resolve, reject) => {
    worker.onerror = (e) => reject(new Error(`the bench worker failed: ${e.message}`));
    worker.onmessage = (e: MessageEvent<{ progress?: string; result?: RunResult; error?: string }>) => {
      if (e.data.progress) console.log(e.data.progress);
      else if (e.data.error) reject(new Error(e.data.error));
      else if (e.data.result) resolve(e.data.result);
    };
    worker.postMessage({ spec, data });
  }).finally(() => worker.terminate());
}

window.__bench = {
  async run(spec) {
    const data = await loadData();
    if (spec.host === 'chromium-worker') return inWorker(spec, data);
    return runSpec(
      spec,
      data,
      () => performance.now(),
      describeTfjs,
      (phase, i, ms) => console.log(`bench-progress ${phase} ${i + 1} ${ms}`),
    );
  },
};
document.body.dataset.ready = '1';
