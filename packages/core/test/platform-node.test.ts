// The Node environment's own files: the runtime directory Dawn is given on a headless machine.
import { chmodSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { runtimeDir } from '../src/platform-node.js';

describe("Dawn's runtime directory", () => {
  it('is one private directory per user, reused by every process, so a killed process leaves none behind', () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'vat-rt-'));
    const a = runtimeDir(tmp);
    const b = runtimeDir(tmp);
    expect(b).toBe(a);
    expect(readdirSync(tmp)).toEqual([path.basename(a)]);
    expect(statSync(a).mode & 0o777).toBe(0o700);
    // Made private again if something loosened it.
    chmodSync(a, 0o755);
    expect(runtimeDir(tmp)).toBe(a);
    expect(statSync(a).mode & 0o777).toBe(0o700);
  });
});
