// What a failure inside the core becomes on the TypeScript side.
import { describe, expect, it } from 'vitest';

import { BackendFailureError, InvalidConfigError, fromCore } from '../src/errors.js';

describe('errors from the core', () => {
  it('turns a wasm trap (out of memory, a panic) into a BackendFailureError that says what to do', () => {
    const e = fromCore(new WebAssembly.RuntimeError('unreachable'));
    expect(e).toBeInstanceOf(BackendFailureError);
    expect(e.message).toMatch(/^the wasm core stopped on an internal error \(unreachable\); the trainer cannot be used any more\. Restart, and resume/);
  });

  it("keeps the class the core named, by the wasm Error's name or the addon's code", () => {
    const wasm = Object.assign(new Error('invalid config: eps must be > 0'), { name: 'InvalidConfigError' });
    expect(fromCore(wasm)).toBeInstanceOf(InvalidConfigError);
    expect(fromCore(wasm).message).toBe('eps must be > 0');
    const addon = Object.assign(new Error('invalid config: eps must be > 0'), { code: 'InvalidConfigError' });
    expect(fromCore(addon)).toBeInstanceOf(InvalidConfigError);
  });
});
