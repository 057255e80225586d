// The golden cases in the browser: vite's import.meta.glob lists them at transform time, and the
// page fetches each case's JSON and .bin from the dev server. `@golden` is an alias set in
// vitest.config.browser.ts (test/golden/cases, or GOLDEN_DIR), which also lets the server read it.

import { inject } from 'vitest';

import { type CaseJson, type CaseSource, parseCase } from './golden.js';

// The part of vite's client types used here (vite is not a direct dependency of this package).
declare global {
  interface ImportMeta {
    glob(pattern: string, options: { query: '?url'; import: 'default'; eager: true }): Record<string, string>;
  }
}

const jsonUrls = import.meta.glob('@golden/*.json', { query: '?url', import: 'default', eager: true });
const binUrls = import.meta.glob('@golden/*.bin', { query: '?url', import: 'default', eager: true });

const baseName = (path: string) => path.slice(path.lastIndexOf('/') + 1);
const byName = (urls: Record<string, string>) => new Map(Object.entries(urls).map(([path, url]) => [baseName(path), url]));
const jsonByName = byName(jsonUrls);
const binByName = byName(binUrls);

async function fetchOk(url: string): Promise<Response> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${res.statusText}`);
  return res;
}

export const browserCases: CaseSource = {
  where: `${inject('goldenDir')} (@golden in vitest.config.browser.ts)`,
  async list() {
    return [...jsonByName.keys()].map((f) => f.slice(0, -'.json'.length)).sort();
  },
  async load(name) {
    const jsonUrl = jsonByName.get(`${name}.json`);
    if (!jsonUrl) throw new Error(`no golden case '${name}' (${name}.json is not in the glob)`);
    const json = (await (await fetchOk(jsonUrl)).json()) as CaseJson;
    const binUrl = binByName.get(json.data);
    if (!binUrl) throw new Error(`${name}: its data file ${json.data} is not in the glob`);
    const bin = new Uint8Array(await (await fetchOk(binUrl)).arrayBuffer());
    return parseCase(name, json, bin);
  },
};
