// The web demo's presets: @vat/core's PRESETS (the CLI's), with one change. The web `default`
// trains on 2000 examples with 1000 held out, not 15000 and 2000, so that a run shows progress
// within a minute or two on a software WebGPU adapter.
import { PRESETS as CORE_PRESETS, type Preset } from '@vat/core';

export type { Preset };

export const PRESETS: Record<string, Preset> = {
  ...CORE_PRESETS,
  default: {
    description: 'quick supervised VAT run (the CLI default on 2000 examples)',
    options: { ...CORE_PRESETS.default.options, trainSize: 2000, valSize: 1000 },
  },
};
