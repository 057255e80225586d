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

/** The web demo from page load (ms on the page's clock) to its first training step. */
export interface PageLoadTimes {
  backend: string;
  adapter: string;
  readyMs: number;
  trainingMs: number;
  firstStepMs: number;
  error?: undefined;
}
export type PageLoad = PageLoadTimes | { backend: string; error: string };

export interface BenchReport {
  started: string;
  wallSeconds: number;
  command: string;
  machine: { cpu: string; cores: number; memoryGiB: number; os: string; node: string; commit: string; chromium?: string };
  options: Omit<RunSpec, 'impl' | 'backend' | 'host' | 'vat' | 'engine' | 'threads'> & { dataSize: number };
  /** The target every speed-up is taken against. */
  baseline: string;
  runs: RunRecord[];
  pageLoads?: PageLoad[];
}

const fmt = (v: number, digits = 0) => v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const mib = (b: number | null) => (b === null ? 'n/a' : fmt(b / 2 ** 20));

/** Median ms/step of a target in a mode, if it ran. */
export function median(report: BenchReport, target: string, vat: boolean): number | undefined {
  return report.runs.find((r) => r.target === target && r.result?.spec.vat === vat)?.result?.medianMs;
}

export interface Ratios {
  /** VAT ms / plain ms, per target. */
  vatCost: Record<string, number>;
  /** baseline ms / target ms, per "mode: target" (> 1: faster than the baseline). */
  overBaseline: Record<string, number>;
  /** burn WebGPU over tfjs in the same browser (tfjs ms / burn ms). */
  burnOverTfjs: Record<string, number>;
  /** The native addon over PyTorch on the same thread count (torch ms / ours). */
  overTorch: Record<string, number>;
  /** The browser's fastest CPU row over burn-flex in the same browser. */
  browserCpu: Record<string, number>;
}

export function ratios(report: BenchReport): Ratios {
  const targets = [...new Set(report.runs.map((r) => r.target))];
  const out: Ratios = { vatCost: {}, overBaseline: {}, burnOverTfjs: {}, overTorch: {}, browserCpu: {} };
  for (const target of targets) {
    const p = median(report, target, false);
    const v = median(report, target, true);
    if (p && v) out.vatCost[target] = v / p;
  }
  for (const vat of [true, false]) {
    const mode = vat ? 'VAT' : 'plain';
    const base = median(report, report.baseline, vat);
    for (const target of targets) {
      const ms = median(report, target, vat);
      if (base && ms && target !== report.baseline) out.overBaseline[`${mode}: ${target}`] = base / ms;
    }
    for (const tfjs of ['tfjs-webgpu-chromium', 'tfjs-webgl-chromium']) {
      const b = median(report, 'burn-webgpu-chromium', vat);
      const t = median(report, tfjs, vat);
      if (b && t) out.burnOverTfjs[`${mode}: burn-webgpu-chromium vs ${tfjs}`] = t / b;
    }
    for (const target of targets.filter((t) => t.startsWith('torch-cpu-'))) {
      const ours = median(report, target.replace('torch-cpu-', 'vat-cpu-native-node-'), vat);
      const torch = median(report, target, vat);
      if (ours && torch) out.overTorch[`${mode}: ${target.replace('torch-cpu-', 'vat-cpu-native-node-')} vs ${target}`] = torch / ours;
    }
    const browser = targets.filter((t) => t.startsWith('vat-cpu-wasm-chromium-'));
    const flex = median(report, 'burn-flex-wasm-chromium', vat);
    const best = browser
      .map((t) => [t, median(report, t, vat)] as const)
      .filter(([, ms]) => ms)
      .sort((a, b) => a[1]! - b[1]!)[0];
    if (flex && best) out.browserCpu[`${mode}: ${best[0]} vs burn-flex-wasm-chromium`] = flex / best[1]!;
  }
  return out;
}

export function markdown(report: BenchReport): string {
  const o = report.options;
  const m = report.machine;
  const lines = [
    `### Bench ${report.started.slice(0, 10)}: seed CNN, batch ${o.batch}`,
    '',
    `Machine: ${m.cpu} (${m.cores} cores), ${m.memoryGiB} GiB, ${m.os}; Node ${m.node}${m.chromium ? `; Chromium ${m.chromium}` : ''}; commit ${m.commit}.`,
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
  const r = ratios(report);
  lines.push(
    '',
    `Speed-ups are time per step of the baseline (${report.baseline}, burn-flex in WebAssembly on one thread: the CPU path before the crate's own kernels) over the row's; above 1 is faster.`,
  );
  lines.push('', '| ratio | value |', '|---|---:|');
  for (const [k, v] of Object.entries(r.overBaseline)) lines.push(`| speed-up over ${report.baseline}, ${k} | ${fmt(v, 2)}x |`);
  for (const [k, v] of Object.entries(r.overTorch)) lines.push(`| speed-up over PyTorch, ${k} | ${fmt(v, 2)}x |`);
  for (const [k, v] of Object.entries(r.browserCpu)) lines.push(`| browser CPU path, ${k} | ${fmt(v, 2)}x |`);
  for (const [t, v] of Object.entries(r.vatCost)) lines.push(`| VAT/plain, ${t} | ${fmt(v, 2)}x |`);
  for (const [k, v] of Object.entries(r.burnOverTfjs)) lines.push(`| speed-up, ${k} | ${fmt(v, 2)}x |`);
  if (report.pageLoads?.length) {
    lines.push(
      '',
      'The web demo in headless Chromium, seconds from page load (target: the first step within 10 s on localhost):',
      '',
      '| backend | adapter | ready | training | first step |',
      '|---|---|---:|---:|---:|',
    );
    for (const p of report.pageLoads) {
      if (p.error !== undefined) lines.push(`| ${p.backend} | failed: ${p.error} | | | |`);
      else lines.push(`| ${p.backend} | ${p.adapter} | ${fmt(p.readyMs / 1000, 1)} | ${fmt(p.trainingMs / 1000, 1)} | ${fmt(p.firstStepMs / 1000, 1)} |`);
    }
  }
  lines.push(
    '',
    "Peak memory is the VmHWM of the run's Node process, or its sum over the browser's processes; with a software adapter it includes what a GPU would hold.",
    '',
  );
  return lines.join('\n');
}
