// Backend selection against fake WebGPU adapters: what `auto` picks on a machine with a hardware
// GPU, with only a software adapter, with an adapter that lacks a limit, and with no WebGPU.
import { afterEach, describe, expect, it } from 'vitest';

import { BackendUnavailableError, probeWebGpu, registerPlatform, resolveBackend } from '../src/index.node.js';
import { nodePlatform } from '../src/platform-node.js';

function fakeGpu(adapter: { info: Partial<GPUAdapterInfo>; isFallbackAdapter?: boolean; limits?: Record<string, number> } | null): GPU {
  return {
    requestAdapter: async () =>
      adapter && {
        info: adapter.info,
        isFallbackAdapter: adapter.isFallbackAdapter ?? false,
        features: new Set<string>(),
        limits: { maxStorageBuffersPerShaderStage: 10, maxComputeWorkgroupSizeX: 1024, maxComputeInvocationsPerWorkgroup: 1024, ...adapter.limits },
      },
  } as unknown as GPU;
}

function withGpu(gpu: GPU | undefined): void {
  registerPlatform({ ...nodePlatform, gpu: async () => gpu });
}

afterEach(() => registerPlatform(nodePlatform));

describe('backend auto', () => {
  it('picks WebGPU on a hardware adapter and says why', async () => {
    withGpu(fakeGpu({ info: { vendor: 'nvidia', architecture: 'hopper', device: 'H200', description: '' } }));
    const r = await resolveBackend('auto');
    expect(r).toMatchObject({ backend: 'webgpu', isFallbackAdapter: false, reason: 'auto: hardware WebGPU adapter found' });
    expect(r.description).toBe('WebGPU: nvidia / hopper / H200');
  });

  it('picks the CPU when the only adapter is software, by flag or by name', async () => {
    withGpu(fakeGpu({ info: { vendor: 'google', architecture: 'swiftshader' } }));
    expect(await resolveBackend('auto')).toMatchObject({
      backend: 'cpu',
      reason: expect.stringMatching(/^auto: only a software adapter \(WebGPU: google \/ swiftshader \(software\)\)/),
    });
    withGpu(fakeGpu({ info: { vendor: 'mesa', device: 'llvmpipe' }, isFallbackAdapter: true }));
    expect((await resolveBackend('auto')).backend).toBe('cpu');
    // Asked for by name, a software adapter is used.
    expect((await resolveBackend('webgpu')).backend).toBe('webgpu');
  });

  it('picks the CPU, with the reason, when an adapter lacks a limit or there is none', async () => {
    withGpu(fakeGpu({ info: { vendor: 'intel' }, limits: { maxStorageBuffersPerShaderStage: 4 } }));
    expect((await resolveBackend('auto')).reason).toMatch(/maxStorageBuffersPerShaderStage is 4, below the 8 needed/);
    await expect(probeWebGpu()).rejects.toBeInstanceOf(BackendUnavailableError);
    withGpu(fakeGpu(null));
    expect((await resolveBackend('auto')).reason).toMatch(/no adapter was found/);
    withGpu(undefined);
    expect(await resolveBackend('auto')).toMatchObject({ backend: 'cpu', reason: 'auto: WebGPU is not available in this Node process; use --backend cpu' });
    await expect(resolveBackend('webgpu')).rejects.toBeInstanceOf(BackendUnavailableError);
  });

  it('requests one adapter per WebGPU entry point and loads no engine to check it', async () => {
    let requests = 0;
    const gpu = fakeGpu({ info: { vendor: 'intel' }, limits: { maxStorageBuffersPerShaderStage: 4 } });
    const request = gpu.requestAdapter;
    gpu.requestAdapter = (o) => {
      requests += 1;
      return request(o);
    };
    registerPlatform({
      ...nodePlatform,
      gpu: async () => gpu,
      engine: async () => {
        throw new Error('a probe must not start an engine');
      },
    });
    await expect(probeWebGpu()).rejects.toThrow(/below the 8 needed/);
    expect((await resolveBackend('auto')).backend).toBe('cpu');
    expect(requests).toBe(1);
  });
});
