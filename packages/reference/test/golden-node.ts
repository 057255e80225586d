// The golden cases read from disk, for the Node suite.

import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { type CaseJson, type CaseSource, parseCase } from './golden.js';

const here = dirname(fileURLToPath(import.meta.url));

/** GOLDEN_DIR points the suite at another copy of the cases (the planted-bug checks use one). */
export const CASES_DIR = process.env.GOLDEN_DIR ? resolve(process.env.GOLDEN_DIR) : resolve(here, '../../../test/golden/cases');

export function nodeCases(dir = CASES_DIR): CaseSource {
  return {
    where: dir,
    async list() {
      return (await readdir(dir))
        .filter((f) => f.endsWith('.json'))
        .map((f) => f.slice(0, -'.json'.length))
        .sort();
    },
    async load(name) {
      const json = JSON.parse(await readFile(join(dir, `${name}.json`), 'utf8')) as CaseJson;
      return parseCase(name, json, await readFile(join(dir, json.data)));
    },
  };
}
