// The bench's Web Worker, for the runs whose host is 'chromium-worker': the CPU backend in the
// threaded wasm module, whose pool must be driven from a worker (the page thread cannot block on
// it) of a cross-origin isolated page. Receives {spec, data}, posts progress and the result.
import { type BenchData, type RunSpec, runSpec } from './measure.js';

const scope = self as unknown as { postMessage(m: unknown): void; onmessage: ((e: MessageEvent) => void) | null };

scope.onmessage = async (e: MessageEvent<{ spec: RunSpec; data: BenchData }>) => {
  try {
    const result = await runSpec(
      e.data.spec,
      e.data.data,
      () => performance.now(),
      undefined,
      (phase, i, ms) => scope.postMessage({ progress: `bench-progress ${phase} ${i + 1} ${ms}` }),
    );
    scope.postMessage({ result });
  } catch (err) {
    scope.postMessage({ error: `${(err as Error).name}: ${(err as Error).message}` });
  }
};
