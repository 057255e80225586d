// The bench's report: the JSON written to bench.json, and its markdown table.
import type { RunResult, RunSpec } from './measure.js';

export interface RunRecord {
  target: string;
  result?: RunResult;
  /** Set when the run failed; `spec` then says what was tried. */
  error?: string;
  spec?: RunSpec;
  /** Peak resident memory (VmHWM) of the run's process, or summed over the browser's processes. */
  peakBytes: number | null;
}

export interface BenchReport {
  started: string;
  wallSeconds: number;
  command: string;
  machine: { cpu: string; memoryGiB: number; os: string; node: string; commit: string; chromium?: string };
  options: Omit<RunSpec, 'impl' | 'backend' | 'host' | 'vat'> & { dataSize: number };
  runs: RunRecord[];
}

const fmt = (v: number, digits = 0) => v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const mib = (b: number | null) => (b === null ? 'n/a' : fmt(b / 2 ** 20));

/** Median ms/step of a target in a mode, if it ran. */
export function median(report: BenchReport, target: string, vat: boolean): number | undefined {
  return report.runs.find((r) => r.target === target && r.result?.spec.vat === vat)?.result?.medianMs;
}

/** VAT/plain per target, and burn over tfjs (tfjs ms / burn ms: > 1 means burn is faster). */
export function ratios(report: BenchReport): { vatCost: Record<string, number>; burnOverTfjs: Record<string, number> } {
  const vatCost: Record<string, number> = {};
  for (const target of new Set(report.runs.map((r) => r.target))) {
    const p = median(report, target, false);
    const v = median(report, target, true);
    if (p && v) vatCost[target] = v / p;
  }
  const burnOverTfjs: Record<string, number> = {};
  for (const tfjs of ['tfjs-webgpu-chromium', 'tfjs-webgl-chromium']) {
    for (const mode of [true, false]) {
      const b = median(report, 'burn-webgpu-chromium', mode);
      const t = median(report, tfjs, mode);
      if (b && t) burnOverTfjs[`${mode ? 'VAT' : 'plain'}: burn-webgpu-chromium vs ${tfjs}`] = t / b;
    }
  }
  return { vatCost, burnOverTfjs };
}

export function markdown(report: BenchReport): string {
  const o = report.options;
  const m = report.machine;
  const lines = [
    `### Bench ${report.started.slice(0, 10)}: seed CNN, batch ${o.batch}`,
    '',
    `Machine: ${m.cpu}, ${m.memoryGiB} GiB, ${m.os}; Node ${m.node}${m.chromium ? `; Chromium ${m.chromium}` : ''}; commit ${m.commit}.`,
    `Command: \`${report.command}\` (${report.wallSeconds} s). Each figure: ${o.warmup} warm-up step(s), then at least ${o.minSteps} measured steps and ${o.minSeconds} s (at most ${o.maxSteps}); median shown.`,
    '',
    '| implementation | adapter | mode | ms/step (median) | min | img/s | peak memory (MiB) | steps |',
    '|---|---|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of report.runs) {
    if (r.result) {
      const x = r.result;
      lines.push(
        `| ${r.target} | ${x.adapter.replace(/\|/g, '/')} | ${x.spec.vat ? 'VAT' : 'plain'} | ${fmt(x.medianMs)} | ${fmt(x.minMs)} | ${fmt(x.imgPerSec, 1)} | ${mib(r.peakBytes)} | ${x.stepMs.length} |`,
      );
    } else {
      lines.push(`| ${r.target} | - | ${r.spec?.vat ? 'VAT' : 'plain'} | failed: ${(r.error ?? '').replace(/\|/g, '/')} | | | | |`);
    }
  }
  const { vatCost, burnOverTfjs } = ratios(report);
  lines.push('', '| ratio | value |', '|---|---:|');
  for (const [t, v] of Object.entries(vatCost)) lines.push(`| VAT/plain, ${t} | ${fmt(v, 2)}x |`);
  for (const [k, v] of Object.entries(burnOverTfjs)) lines.push(`| speed-up, ${k} | ${fmt(v, 2)}x |`);
  lines.push(
    '',
    'Peak memory is the VmHWM of the run\'s Node process, or its sum over the browser\'s processes; with a software adapter it includes what a GPU would hold.',
    '',
  );
  return lines.join('\n');
}
