// Choosing and starting a backend. WebGPU comes up in one async path: an adapter exists, it has
// the features and limits burn needs, then a device whose loss we watch. In Node, WebGPU comes
// from the npm package `webgpu` (Dawn), installed into the globals that wgpu's browser backend
// reads (../shared/NOTES.md has the details).

import { BackendUnavailableError, InvalidConfigError } from './errors.js';

export type BackendName = 'auto' | 'cpu' | 'webgpu';
export const BACKENDS: readonly BackendName[] = ['auto', 'cpu', 'webgpu'];

export interface AdapterReport {
  backend: 'cpu' | 'webgpu';
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

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

export function parseBackend(value: string): BackendName {
  if ((BACKENDS as readonly string[]).includes(value)) return value as BackendName;
  throw new InvalidConfigError(`unknown backend '${value}'; use one of ${BACKENDS.join(', ')}`);
}

let nodeGpu: Promise<GPU | undefined> | undefined;

/**
 * Makes `navigator.gpu` available in Node through the `webgpu` package. On a machine with no
 * GPU driver it points Vulkan at the SwiftShader that Debian's chromium ships, unless
 * VK_ICD_FILENAMES is already set.
 */
export function installNodeWebGpu(): Promise<GPU | undefined> {
  nodeGpu ??= (async () => {
    const { existsSync } = await import('node:fs');
    const swiftshader = '/usr/lib/chromium/vk_swiftshader_icd.json';
    const hasGpuDevice = existsSync('/dev/nvidia0') || existsSync('/dev/dri/renderD128') || existsSync('/dev/dxg');
    if (!process.env.VK_ICD_FILENAMES && !hasGpuDevice && existsSync(swiftshader)) {
      process.env.VK_ICD_FILENAMES = swiftshader;
    }
    // Dawn's windowing probe prints "XDG_RUNTIME_DIR is invalid" on headless machines; give it
    // a private directory, as a login session would.
    if (!process.env.XDG_RUNTIME_DIR) {
      const { mkdtempSync } = await import('node:fs');
      const { tmpdir } = await import('node:os');
      process.env.XDG_RUNTIME_DIR = mkdtempSync(`${tmpdir()}/vat-xdg-`);
    }
    let mod: typeof import('webgpu');
    try {
      mod = await import('webgpu');
    } catch (err) {
      throw new BackendUnavailableError(`the 'webgpu' package could not load (${(err as Error).message}); use --backend cpu`);
    }
    Object.assign(globalThis, mod.globals);
    const gpu = mod.create([]);
    const nav = (globalThis as { navigator?: object }).navigator;
    if (nav) {
      Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
    } else {
      Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    }
    // wgpu's browser backend finds navigator through `Window` or `WorkerGlobalScope`.
    const g = globalThis as { Window?: unknown; WorkerGlobalScope?: unknown };
    if (g.Window === undefined && g.WorkerGlobalScope === undefined) {
      g.WorkerGlobalScope = class WorkerGlobalScope {};
    }
    return gpu;
  })();
  return nodeGpu;
}

async function getGpu(): Promise<GPU | undefined> {
  if (typeof navigator !== 'undefined' && (navigator as Navigator).gpu) return (navigator as Navigator).gpu;
  if (isNode) return installNodeWebGpu();
  return undefined;
}

/** Features and limits below which burn's WebGPU kernels cannot run here. */
const REQUIRED_FEATURES: GPUFeatureName[] = [];
const REQUIRED_LIMITS: Partial<Record<keyof GPUSupportedLimits, number>> = {
  maxStorageBuffersPerShaderStage: 8,
  maxComputeWorkgroupSizeX: 256,
  maxComputeInvocationsPerWorkgroup: 256,
};

/** Checks WebGPU without keeping a device: adapter, features, limits. */
export async function probeWebGpu(): Promise<AdapterReport> {
  const gpu = await getGpu();
  if (!gpu) {
    throw new BackendUnavailableError(
      isNode
        ? 'WebGPU is not available in this Node process; use --backend cpu'
        : 'this browser has no WebGPU (navigator.gpu is missing); use a browser with WebGPU enabled, or the CPU backend',
    );
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new BackendUnavailableError('WebGPU is present but no adapter was found (no GPU driver?); use the CPU backend');
  }
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
    /swiftshader|llvmpipe|lavapipe|software/i.test(`${info?.vendor} ${info?.architecture} ${info?.device} ${info?.description}`);
  const parts = [info?.vendor, info?.architecture, info?.device, info?.description].filter((s) => s && s.length);
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
 * Resolves `auto` to `webgpu` when a hardware adapter exists, else `cpu`. A software adapter
 * (SwiftShader) is used only when asked for by name: on a CPU it is slower than burn-flex.
 */
export async function resolveBackend(name: BackendName): Promise<AdapterReport> {
  if (name === 'cpu') return { backend: 'cpu', description: 'CPU: burn-flex in WebAssembly' };
  if (name === 'webgpu') return probeWebGpu();
  try {
    const report = await probeWebGpu();
    if (!report.isFallbackAdapter) return { ...report, reason: 'auto: hardware WebGPU adapter found' };
    return { backend: 'cpu', description: 'CPU: burn-flex in WebAssembly', reason: `auto: only a software adapter (${report.description})` };
  } catch (err) {
    return { backend: 'cpu', description: 'CPU: burn-flex in WebAssembly', reason: `auto: ${(err as Error).message}` };
  }
}
