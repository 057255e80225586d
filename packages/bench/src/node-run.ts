// One Node run in its own process, so that its peak memory is its own: reads a RunSpec (JSON,
// argv[2]), prints one JSON line {result, peakBytes} on stdout, progress on stderr.
import { performance } from 'node:perf_hooks';

import { benchData } from './data.js';
import { type RunSpec, runSpec } from './measure.js';
import { peakRss } from './memory.js';

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as RunSpec;
  const data = await benchData(Number(process.argv[3] ?? 1024));
  const result = await runSpec(
    spec,
    data,
    () => performance.now(),
    undefined,
    (phase, i, ms) => process.stderr.write(`  ${phase} step ${i + 1}: ${(ms / 1000).toFixed(2)} s\n`),
  );
  process.stdout.write(`${JSON.stringify({ result, peakBytes: peakRss() ?? null })}\n`);
}

main().then(
  // Dawn keeps the process alive while its GPU object lives; the run is over.
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}\n`);
    process.exit(1);
  },
);
