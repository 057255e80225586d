// The page's side of the worker: `call` sends one method call (protocol.ts) and resolves with its
// reply; events the worker pushes go to the one handler main.ts sets.
import type { Reply, WireError, WorkerApi, WorkerEvent } from '../protocol.js';
import { showError } from './state.js';

const worker = new Worker(new URL('../worker.ts', import.meta.url), { type: 'module' });
let nextId = 1;
const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
let onEvent: (e: WorkerEvent) => void = () => undefined;

function wireError(e: WireError): Error {
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

export function call<K extends keyof WorkerApi>(method: K, ...args: Parameters<WorkerApi[K]>): ReturnType<WorkerApi[K]> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, method, args });
  }) as ReturnType<WorkerApi[K]>;
}

/** Where the worker's events (steps, epochs, views, phases) go. */
export function onWorkerEvent(handler: (e: WorkerEvent) => void): void {
  onEvent = handler;
}

worker.onmessage = (e: MessageEvent<Reply | WorkerEvent>) => {
  const m = e.data;
  if ('id' in m) {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.ok) p?.resolve(m.value);
    else p?.reject(wireError(m.error));
  } else {
    onEvent(m);
  }
};
worker.onerror = (e) => showError('train', { name: 'BackendFailureError', message: `the training worker failed: ${e.message}` });
