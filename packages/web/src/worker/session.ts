// What the worker holds between calls: the data, the trainer, the run going on, the view's
// settings, and the queue that orders the worker's own sequences of trainer calls.
import { type ImageSet, InvalidConfigError, type Trainer } from '@vat/core';

import type { WorkerEvent } from '../protocol.js';
import { IdbCheckpointStore } from './idb.js';

const scope = self as unknown as { postMessage(message: unknown, transfer?: Transferable[]): void };

/** Pushes an event to the page. */
export const emit = (e: WorkerEvent) => scope.postMessage(e);

export const session = {
  /** The bundled MNIST, once fetched. */
  mnist: undefined as { train: ImageSet; test: ImageSet } | undefined,
  /** The data runs train on; `source` is "train source | test source". */
  data: undefined as { train: ImageSet; test: ImageSet; source: string } | undefined,
  trainer: undefined as Trainer | undefined,
  running: undefined as { controller: AbortController; stopping: boolean } | undefined,
  store: new IdbCheckpointStore(),
  viewIndices: [0, 1, 2, 3],
  refreshEvery: 20,
  /** Test images whose predictions make the live accuracy and confusion matrix between epochs. */
  monitorSize: 500,
  lastProgress: { step: 0, epoch: 0, epochProgress: 0 },
};

// The Trainer queues its own calls into the core; this queue orders the worker's own sequences
// (a view refresh against swapping in another trainer).
let tail: Promise<unknown> = Promise.resolve();
export function exclusive<T>(f: () => Promise<T>): Promise<T> {
  const r = tail.then(f);
  tail = r.catch(() => undefined);
  return r;
}

/** Makes `t` the worker's trainer (disposing the one before) and tells the page its adapter. */
export async function setTrainer(t: Trainer): Promise<void> {
  await exclusive(async () => {
    session.trainer?.dispose();
    session.trainer = t;
  });
  emit({ event: 'adapter', description: t.adapter.description, backend: t.backend, reason: t.adapter.reason });
}

export function need<T>(value: T | undefined, message: string): T {
  if (value === undefined) throw new InvalidConfigError(message);
  return value;
}

export function notRunning(what: string): void {
  if (session.running) throw new InvalidConfigError(`pause or stop the run before you ${what}`);
}
