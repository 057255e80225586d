// Debian's chromium and the launch flags that work on these machines (docs/platform.md); no
// browser can be downloaded here. Used by the web e2e suite and the reference's browser suite.
// packages/bench/src/main.ts keeps its own copy: it is a built program, not a test.

/** CHROMIUM_PATH overrides Debian's path. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** What every launch needs: no sandbox (containers run as root), and no traffic of its own. */
export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** With navigator.gpu, which Debian's build exposes only behind this flag (SwiftShader without a GPU). */
export const CHROMIUM_WEBGPU_FLAGS = ['--enable-unsafe-webgpu', ...CHROMIUM_FLAGS];
