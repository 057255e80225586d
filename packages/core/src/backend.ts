// Choosing a backend. WebGPU comes up in one async path: an adapter exists, it has the features
// and limits burn needs, then a device whose loss we watch. Where navigator.gpu comes from is the
// environment's business (platform-node.ts: the npm package `webgpu`, i.e. Dawn).
//
// Backends: 'cpu' is the crate's own CPU kernels (threaded where the engine has threads);
// 'burn-cpu' is burn-flex on one thread (a cross-check and the bench's baseline); 'webgpu' is
// burn-wgpu, in the wasm engine only.

import { platform } from './engine.js';
import { BackendUnavailableError, InvalidConfigError } from './errors.js';

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

/** Checks WebGPU without keeping a device: adapter, features, limits. */
export async function probeWebGpu(): Promise<AdapterReport> {
  const gpu = await platform().gpu();
  if (!gpu) throw new BackendUnavailableError(platform().noGpuAdvice);
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
 * Resolves `auto` to `webgpu` when a hardware adapter exists, else `cpu`. A software adapter
 * (SwiftShader) is used only when asked for by name: on a CPU it is slower than burn-flex.
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
