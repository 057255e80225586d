// The data panel: the bundled MNIST (fetched gzipped from this origin), the user's idx files, or a
// data set the user drops or chooses (a CSV, a .npz, or a folder of class subfolders).
import type { DataSummary } from '../protocol.js';
import { call } from './client.js';
import { $, asWire, showError, state } from './state.js';
import { setGridImages } from './view.js';

const mnistBase = () => new URL('mnist/', document.baseURI).href;

async function afterDataChange(d: DataSummary): Promise<void> {
  state.data = d;
  const shape: [number, number, number] = [d.train.channels, d.train.rows, d.train.cols];
  const s = (x: DataSummary['train']) => `${x.count} images from ${x.source}`;
  $('data-status').textContent = `Training: ${s(d.train)}. Test: ${s(d.test)}. Images: ${shape.join('x')}.`;
  // The drawing pad makes 28x28 grey digits: it predicts only for a model of such images.
  const mnistLike = shape.join('x') === '1x28x28';
  $('draw-card').classList.toggle('disabled', !mnistLike);
  $('draw-note').textContent = mnistLike ? '' : `The pad draws 28x28 grey digits; these images are ${shape.join('x')}.`;
  const images = await call(
    'testImages',
    Array.from({ length: Math.min(48, d.test.count) }, (_, i) => i),
  );
  setGridImages({ ...images, shape });
}

/** Loads the bundled MNIST; throws what the worker threw. */
export async function loadMnist(): Promise<void> {
  await afterDataChange(await call('loadMnist', mnistBase()));
}

/** Every file under a dropped item, with its path from the dropped folder (directories read in full). */
async function droppedFiles(items: DataTransferItemList): Promise<{ path: string; file: File }[]> {
  const out: { path: string; file: File }[] = [];
  const walk = async (entry: FileSystemEntry): Promise<void> => {
    if (entry.isFile) {
      const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
      out.push({ path: entry.fullPath.replace(/^\//, ''), file });
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      // readEntries returns a batch at a time, and an empty one at the end.
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
        if (batch.length === 0) break;
        for (const e of batch) await walk(e);
      }
    }
  };
  const entries = Array.from(items)
    .map((i) => i.webkitGetAsEntry())
    .filter((e): e is FileSystemEntry => e !== null);
  for (const e of entries) await walk(e);
  return out;
}

async function useDataset(entries: { path: string; file: File }[]): Promise<void> {
  try {
    const d = await call('loadDataset', entries);
    showError('data', undefined);
    await afterDataChange(d);
  } catch (err) {
    showError('data', asWire(err));
  }
}

export function installData(): void {
  const zone = $('drop-zone');
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    if (e.dataTransfer) void droppedFiles(e.dataTransfer.items).then(useDataset, (err) => showError('data', asWire(err)));
  });
  $('data-files').addEventListener('change', (e) => {
    const input = e.currentTarget as HTMLInputElement;
    void useDataset(Array.from(input.files ?? [], (file) => ({ path: file.name, file })));
  });
  $('data-folder').addEventListener('change', (e) => {
    const input = e.currentTarget as HTMLInputElement;
    void useDataset(Array.from(input.files ?? [], (file) => ({ path: file.webkitRelativePath || file.name, file })));
  });
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
