// The Node environment: the native addon for the CPU backend when it is built for this machine
// (the fastest), else the wasm module read from disk; WebGPU through the `webgpu` package (Dawn).

import { chmodSync, mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';

import { type CoreBindings, type EngineChoice, type EngineName, type Platform, oneThreadOnly, registerPlatform } from './engine.js';
import { BackendUnavailableError, InvalidConfigError } from './errors.js';

async function nativeEngine(threads: number | undefined): Promise<EngineChoice> {
  let bindings: CoreBindings;
  try {
    const { loadNative } = await import('@vat/native');
    bindings = loadNative();
  } catch (err) {
    throw new BackendUnavailableError(
      `the native addon is not available (${(err as Error).message.split('\n')[0]}); build it with 'pnpm run build', or use engine 'wasm'`,
    );
  }
  return { engine: 'native', bindings, threads: threads ?? availableParallelism(), label: 'native addon' };
}

async function wasmEngine(backend: string, threads: number | undefined, reason?: string): Promise<EngineChoice> {
  if (backend === 'cpu' && threads !== undefined && threads > 1) {
    throw new InvalidConfigError(
      `the wasm engine runs the CPU backend on one thread in Node (its thread pool, wasm-bindgen-rayon, has no Node support); use engine 'native' for ${threads} threads`,
    );
  }
  oneThreadOnly(backend, threads);
  const { loadWasm } = await import('@vat/wasm');
  return { engine: 'wasm', bindings: await loadWasm(), threads: 1, label: 'WebAssembly', reason };
}

let nodeGpu: Promise<GPU | undefined> | undefined;

/**
 * Why Dawn cannot run here, checked before loading it: without a Vulkan loader Dawn prints its
 * own "Couldn't load Vulkan" warning on stderr, which the user never asked to see. Linux only;
 * elsewhere Dawn uses Metal or D3D.
 */
async function vulkanMissing(): Promise<string | undefined> {
  if (process.platform !== 'linux') return undefined;
  const { execFileSync } = await import('node:child_process');
  const { existsSync } = await import('node:fs');
  try {
    if (/\blibvulkan\.so\.1\b/.test(execFileSync('ldconfig', ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))) return undefined;
  } catch {
    // no ldconfig on PATH: look where distributions put the loader
    const dirs = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu'];
    if (dirs.some((d) => existsSync(`${d}/libvulkan.so.1`))) return undefined;
  }
  return 'this machine has no Vulkan loader (libvulkan.so.1), which WebGPU in Node (Dawn) needs; install it (Debian: libvulkan1), or use --backend cpu';
}

/**
 * Makes `navigator.gpu` available in Node through the `webgpu` package. On a machine with no
 * GPU driver it points Vulkan at the SwiftShader that Debian's chromium ships, unless
 * VK_ICD_FILENAMES is already set.
 */
/** `<tmp>/vat-xdg-<uid>`, made private (0700) if it is not; a directory someone else owns is not used. */
export function runtimeDir(tmp: string): string {
  const uid = process.getuid?.() ?? 0;
  const dir = `${tmp}/vat-xdg-${uid}`;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  if (st.uid !== uid) return mkdtempSync(`${tmp}/vat-xdg-${uid}-`);
  if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
  return dir;
}

export function installNodeWebGpu(): Promise<GPU | undefined> {
  nodeGpu ??= (async () => {
    const missing = await vulkanMissing();
    if (missing) throw new BackendUnavailableError(missing);
    const { existsSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const swiftshader = '/usr/lib/chromium/vk_swiftshader_icd.json';
    const hasGpuDevice = existsSync('/dev/nvidia0') || existsSync('/dev/dri/renderD128') || existsSync('/dev/dxg');
    if (!process.env.VK_ICD_FILENAMES && !hasGpuDevice && existsSync(swiftshader)) {
      process.env.VK_ICD_FILENAMES = swiftshader;
    }
    // Dawn's windowing probe prints "XDG_RUNTIME_DIR is invalid" on headless machines; give it
    // a private directory, as a login session would: one per user, kept and reused, so that a
    // process killed by a signal leaves nothing behind (a fresh one per process did).
    if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = runtimeDir(tmpdir());
    let mod: typeof import('webgpu');
    try {
      mod = await import('webgpu');
    } catch (err) {
      throw new BackendUnavailableError(`the 'webgpu' package could not load (${(err as Error).message}); install it, or use --backend cpu`);
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

export const nodePlatform: Platform = {
  async engine(name: EngineName, backend: string, threads: number | undefined): Promise<EngineChoice> {
    if (name === 'native') {
      if (backend !== 'cpu') {
        throw new BackendUnavailableError(`the native engine runs only the CPU backend; use engine 'wasm' for backend '${backend}'`);
      }
      return nativeEngine(threads);
    }
    if (name === 'auto' && backend === 'cpu') {
      try {
        return { ...(await nativeEngine(threads)), reason: 'auto: the native addon is the fastest CPU engine' };
      } catch (err) {
        return wasmEngine(backend, threads, `auto: ${(err as Error).message}`);
      }
    }
    return wasmEngine(backend, threads);
  },
  async bindings() {
    return (await nodePlatform.engine('auto', 'cpu', 1)).bindings;
  },
  gpu: installNodeWebGpu,
  noGpuAdvice: 'WebGPU is not available in this Node process; use --backend cpu',
};

registerPlatform(nodePlatform);
