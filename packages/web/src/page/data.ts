// The data panel: the bundled MNIST (fetched gzipped from this origin) or the user's idx files.
import type { DataSummary } from '../protocol.js';
import { call } from './client.js';
import { $, asWire, showError, state } from './state.js';
import { setGridImages } from './view.js';

const mnistBase = () => new URL('mnist/', document.baseURI).href;

async function afterDataChange(d: DataSummary): Promise<void> {
  state.data = d;
  const s = (x: DataSummary['train']) => `${x.count} images from ${x.source}`;
  $('data-status').textContent = `Training: ${s(d.train)}. Test: ${s(d.test)}.`;
  setGridImages(
    await call(
      'testImages',
      Array.from({ length: Math.min(48, d.test.count) }, (_, i) => i),
    ),
  );
}

/** Loads the bundled MNIST; throws what the worker threw. */
export async function loadMnist(): Promise<void> {
  await afterDataChange(await call('loadMnist', mnistBase()));
}

export function installData(): void {
  $('load-files').addEventListener('click', async () => {
    const file = (id: string) => $<HTMLInputElement>(id).files?.[0];
    try {
      const d = await call('loadFiles', {
        trainImages: file('train-images'),
        trainLabels: file('train-labels'),
        testImages: file('test-images'),
        testLabels: file('test-labels'),
      });
      showError('data', undefined);
      await afterDataChange(d);
    } catch (err) {
      showError('data', asWire(err));
    }
  });
  $('load-mnist').addEventListener('click', async () => {
    try {
      await loadMnist();
      showError('data', undefined);
    } catch (err) {
      showError('data', asWire(err));
    }
  });
}
