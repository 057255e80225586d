// @vat/core's CheckpointStore over IndexedDB, so a paused or interrupted run survives a reload.
// One database, one object store; the checkpoint bytes and a small description of the run
// (StoredRun) are kept under fixed keys. Works in the worker and on the page.
import type { CheckpointStore } from '@vat/core';

import type { StoredRun } from '../protocol.js';

const DB = 'vat-web';
const STORE = 'runs';
const CHECKPOINT = 'checkpoint';
const META = 'meta';

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

let opened: Promise<IDBDatabase> | undefined;
function db(): Promise<IDBDatabase> {
  opened ??= new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  return opened;
}

async function tx<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const d = await db();
  const t = d.transaction(STORE, mode);
  // A write counts once its transaction has committed, not when its request succeeded.
  const committed = new Promise<void>((resolve, reject) => {
    t.oncomplete = () => resolve();
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error ?? new Error('IndexedDB transaction aborted'));
  });
  const result = await request(f(t.objectStore(STORE)));
  await committed;
  return result;
}

export class IdbCheckpointStore implements CheckpointStore {
  /** While false, save() does nothing: a stopped run must not leave a checkpoint behind. */
  enabled = true;

  async save(bytes: Uint8Array): Promise<void> {
    if (!this.enabled) return;
    await tx('readwrite', (s) => s.put(bytes, CHECKPOINT));
  }

  async load(): Promise<Uint8Array | undefined> {
    const v = await tx('readonly', (s) => s.get(CHECKPOINT) as IDBRequest<Uint8Array | undefined>);
    return v ? new Uint8Array(v) : undefined;
  }

  async saveMeta(meta: StoredRun): Promise<void> {
    await tx('readwrite', (s) => s.put(meta, META));
  }

  async loadMeta(): Promise<StoredRun | undefined> {
    return tx('readonly', (s) => s.get(META) as IDBRequest<StoredRun | undefined>);
  }

  async clear(): Promise<void> {
    await tx('readwrite', (s) => s.clear());
  }
}
