// Choosing a backend. WebGPU comes up in one path: one adapter request per process, checked for
// the features and limits burn needs (probeWebGpu), and that adapter handed to wgpu, which makes
// the device every trainer shares (startWebGpu). Where navigator.gpu comes from is the
// environment's business (platform-node.ts: the npm package `webgpu`, i.e. Dawn).
//
// Backends: 'cpu' is the crate's own CPU kernels (threaded where the engine has threads);
// 'burn-cpu' is burn-flex on one thread (a cross-check and the bench's baseline); 'webgpu' is
// burn-wgpu, in the wasm engine only.

import { platform } from './engine.js';
import { BackendUnavailableError, InvalidConfigError, coreCall } from './errors.js';

export type BackendName = 'auto' | 'cpu' | 'burn-cpu' | 'webgpu';
export const BACKENDS: readonly BackendName[] = ['auto', 'cpu', 'burn-cpu', 'webgpu'];
export type ResolvedBackend = Exclude<BackendName, 'auto'>;

export interface AdapterReport {
  backend: ResolvedBackend;
  /** 'native' (the Node addon) or 'wasm'. */
  engine?: 'wasm' | 'native';
  /** Threads the CPU backend runs on. */
  threads?: number;
  /** One line for logs and run.json. */
  description: string;
  vendor?: string;
  architecture?: string;
  device?: string;
  /** A software adapter such as SwiftShader. `auto` does not pick these. */
  isFallbackAdapter?: boolean;
  /** Why `auto` chose what it chose. */
  reason?: string;
}

export function parseBackend(value: string): BackendName {
  if ((BACKENDS as readonly string[]).includes(value)) return value as BackendName;
  throw new InvalidConfigError(`unknown backend '${value}'; use one of ${BACKENDS.join(', ')}`);
}

/** Features and limits below which burn's WebGPU kernels cannot run here. */
const REQUIRED_FEATURES: GPUFeatureName[] = [];
const REQUIRED_LIMITS: Partial<Record<keyof GPUSupportedLimits, number>> = {
  maxStorageBuffersPerShaderStage: 8,
  maxComputeWorkgroupSizeX: 256,
  maxComputeInvocationsPerWorkgroup: 256,
};

/**
 * Checks an adapter against the features and limits burn needs and describes it; a software
 * adapter (SwiftShader, llvmpipe) is flagged. Throws BackendUnavailableError naming what is missing.
 */
export function describeAdapter(adapter: GPUAdapter): AdapterReport {
  const missing = REQUIRED_FEATURES.filter((f) => !adapter.features.has(f));
  if (missing.length) {
    throw new BackendUnavailableError(`the WebGPU adapter lacks features ${missing.join(', ')}; use the CPU backend`);
  }
  for (const [k, min] of Object.entries(REQUIRED_LIMITS)) {
    const have = (adapter.limits as unknown as Record<string, number>)[k] ?? 0;
    if (have < min!) {
      throw new BackendUnavailableError(`the WebGPU adapter's ${k} is ${have}, below the ${min} needed; use the CPU backend`);
    }
  }
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  const isFallbackAdapter =
    (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter === true ||
    (info as (GPUAdapterInfo & { isFallbackAdapter?: boolean }) | undefined)?.isFallbackAdapter === true ||
    /swiftshader|llvmpipe|lavapipe|software/i.test(`${info?.vendor} ${info?.architecture} ${info?.device} ${info?.description}`);
  const parts = [info?.vendor, info?.architecture, info?.device, info?.description].filter((s) => s?.length);
  return {
    backend: 'webgpu',
    description: `WebGPU: ${parts.join(' / ') || 'unnamed adapter'}${isFallbackAdapter ? ' (software)' : ''}`,
    vendor: info?.vendor,
    architecture: info?.architecture,
    device: info?.device,
    isFallbackAdapter,
  };
}

/**
 * Runs `start` (which brings wgpu up) with `gpu.requestAdapter` answering `adapter`: wgpu asks
 * for an adapter once, and gets the one already requested and checked here. The method is put
 * back afterwards.
 */
async function handOver<T>(gpu: GPU, adapter: GPUAdapter, start: () => Promise<T>): Promise<T> {
  const own = Object.getOwnPropertyDescriptor(gpu, 'requestAdapter');
  Object.defineProperty(gpu, 'requestAdapter', { value: async () => adapter, configurable: true, writable: true });
  try {
    return await start();
  } finally {
    if (own) Object.defineProperty(gpu, 'requestAdapter', own);
    else delete (gpu as unknown as { requestAdapter?: unknown }).requestAdapter;
  }
}

/** The one adapter request made of each GPU object (navigator.gpu: one per page or process). */
const requested = new WeakMap<GPU, Promise<GPUAdapter | null>>();
/** wgpu brought up on that adapter (once per process): its line for the adapter. */
let started: Promise<string> | undefined;
let wgpuLine: string | undefined;

/**
 * Checks WebGPU without starting it: the adapter (requested once and kept for startWebGpu), its
 * features and limits. Loads no wasm, so a page without a usable adapter never
 * fetches the WebGPU module.
 */
export async function probeWebGpu(): Promise<AdapterReport> {
  const gpu = await platform().gpu();
  if (!gpu) throw new BackendUnavailableError(platform().noGpuAdvice);
  if (!requested.has(gpu)) requested.set(gpu, gpu.requestAdapter({ powerPreference: 'high-performance' }));
  const adapter = await requested.get(gpu)!.catch((e: Error) => {
    requested.delete(gpu);
    throw new BackendUnavailableError(`requesting a WebGPU adapter failed (${e.message}); use the CPU backend`);
  });
  if (!adapter) {
    throw new BackendUnavailableError('WebGPU is present but no adapter was found (no GPU driver?); use the CPU backend');
  }
  const report = describeAdapter(adapter);
  if (wgpuLine) report.description += ` [wgpu: ${wgpuLine}]`;
  return report;
}

/**
 * Brings WebGPU up in the one way this project uses it: the adapter probeWebGpu requested and
 * checked is handed to wgpu (inside the wasm module), which makes the device on it once per
 * process; every trainer on `webgpu` shares that device. So the adapter a probe reports, the one
 * `auto` decides on and the one that trains are the same object.
 */
export async function startWebGpu(): Promise<AdapterReport> {
  const report = await probeWebGpu();
  if (wgpuLine) return report;
  // One bring-up at a time: two overlapping hand-overs would put the wrong method back.
  started ??= (async () => {
    const gpu = (await platform().gpu())!;
    const adapter = (await requested.get(gpu))!;
    const { bindings } = await platform().engine('wasm', 'webgpu', 1);
    if (!bindings.startWebGpu) throw new BackendUnavailableError('this build of the wasm module has no WebGPU backend; use the CPU backend');
    return handOver(gpu, adapter, () => coreCall(() => bindings.startWebGpu!()));
  })().catch((e: unknown) => {
    started = undefined;
    throw e;
  });
  wgpuLine = await started;
  report.description += ` [wgpu: ${wgpuLine}]`;
  return report;
}

/**
 * Resolves `auto` to `webgpu` when a hardware adapter exists, else `cpu`. A software adapter
 * (SwiftShader) is used only when asked for by name: on a CPU it is slower than the CPU kernels.
 */
export async function resolveBackend(name: BackendName): Promise<AdapterReport> {
  if (name === 'cpu') return { backend: 'cpu', description: 'CPU' };
  if (name === 'burn-cpu') return { backend: 'burn-cpu', description: 'CPU: burn-flex in WebAssembly' };
  if (name === 'webgpu') return probeWebGpu();
  try {
    const report = await probeWebGpu();
    if (!report.isFallbackAdapter) return { ...report, reason: 'auto: hardware WebGPU adapter found' };
    return { backend: 'cpu', description: 'CPU', reason: `auto: only a software adapter (${report.description})` };
  } catch (err) {
    return { backend: 'cpu', description: 'CPU', reason: `auto: ${(err as Error).message}` };
  }
}
