// A Web Worker for the browser parity suite: runs `inspect` on the CPU backend in the threaded
// wasm module, which needs a worker (its pool's callers block) of a cross-origin isolated page.
// One worker per thread count: the module starts its pool once per worker.
import { inspect } from '@vat/core';

const scope = self as unknown as { postMessage(m: unknown): void; onmessage: ((e: MessageEvent) => void) | null };

scope.onmessage = async (e: MessageEvent<{ id: number; options: Record<string, unknown>; input: Parameters<typeof inspect>[2] }>) => {
  const { id, options, input } = e.data;
  try {
    scope.postMessage({ id, result: await inspect('cpu', options, input) });
  } catch (err) {
    scope.postMessage({ id, error: `${(err as Error).name}: ${(err as Error).message}` });
  }
};
