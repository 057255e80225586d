#!/usr/bin/env node
// `pnpm accuracy`: the accuracy harness. Trains the configurations below one after another with
// the CLI (packages/cli/dist/main.js), each in runs/accuracy/<name>, and rewrites the accuracy
// section of docs/results.md every minute and after every run, with the command, the commit and the
// wall time. Meant to run in the background for hours:
//
//   nohup pnpm accuracy > runs/accuracy.log 2>&1 &
//
// It can be stopped at any time (Ctrl-C or kill: the CLI writes a checkpoint) and started again:
// finished runs are skipped, interrupted ones resume from their checkpoint, exactly.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { writeFileAtomic } from '@vat/core/node';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLI = path.join(ROOT, 'packages/cli/dist/main.js');
const BEGIN = '<!-- accuracy:begin (written by pnpm accuracy; edits inside are overwritten) -->';
const END = '<!-- accuracy:end -->';

interface Config {
  name: string;
  what: string;
  /** `vat train` flags. */
  args: string[];
  /** The figure to compare with, as test accuracy. */
  target?: { accuracy: number; source: string };
}

/** In the order they run: the seed's table (the VAT row, our target, first), then semi-supervised MNIST. */
export const CONFIGS: Config[] = [
  { name: 'seed-vat', what: 'seed, no dropout, VAT', args: ['--preset', 'seed'], target: { accuracy: 0.992, source: 'our target (seed: 99.16%)' } },
  { name: 'seed-plain', what: 'seed, no dropout, no VAT', args: ['--preset', 'seed', '--no-vat'], target: { accuracy: 0.9877, source: 'seed (Keras)' } },
  {
    name: 'seed-dropout',
    what: 'seed, dropout, no VAT',
    args: ['--preset', 'seed', '--dropout', '--no-vat'],
    target: { accuracy: 0.9853, source: 'seed (Keras)' },
  },
  { name: 'seed-dropout-vat', what: 'seed, dropout, VAT', args: ['--preset', 'seed', '--dropout'], target: { accuracy: 0.9901, source: 'seed (Keras)' } },
  {
    name: 'semi-100',
    what: "semi-supervised, 100 labels, the seed's CNN",
    args: ['--preset', 'paper-semi'],
    target: { accuracy: 0.98, source: 'our target (error <= 2.0%)' },
  },
  {
    name: 'semi-100-mlp',
    what: "semi-supervised, 100 labels, the paper's MLP (784-1200-1200-10, batch norm)",
    args: ['--preset', 'paper-mlp-semi'],
    target: { accuracy: 0.9788, source: "paper (ICLR'16): 2.12% error" },
  },
  {
    name: 'semi-1000',
    what: "semi-supervised, 1000 labels, the paper's MLP",
    // The preset's settings before it moved to eps 5, the entropy term at 0.3, 40 epochs at
    // x0.9515 and the batch norm re-estimation, with which this row ran.
    args: [
      '--preset',
      'paper-mlp-semi',
      '--labeled',
      '1000',
      '--eps',
      '2',
      '--entmin-weight',
      '1',
      '--epochs',
      '30',
      '--lr-decay',
      '0.9',
      '--no-reestimate-bn',
    ],
    target: { accuracy: 0.9864, source: "paper (ICLR'16): 1.36% error" },
  },
  {
    // The official code's own settings and length: eps 0.3, no entropy term, 100 epochs of 500
    // steps decayed x0.9 each. Our epoch is one pass over the 59,000 unlabeled images (236
    // steps), so that is 212 of ours at x0.9^(236/500) = 0.9515. About 2 h on 2 cores (34 s an
    // epoch).
    name: 'semi-100-mlp-official',
    what: "semi-supervised, 100 labels, the paper's MLP on the official code's schedule (no entropy term, eps 0.3, 50,000 steps)",
    args: ['--preset', 'paper-mlp-semi', '--no-entmin', '--eps', '0.3', '--lr-decay', '0.9515', '--epochs', '212'],
    target: { accuracy: 0.9788, source: "paper (ICLR'16): 2.12% error" },
  },
];

interface EpochLine {
  epoch: number;
  valAccuracy: number;
  trainSeconds: number;
  seconds: number;
}

interface RunState {
  config: Config;
  status: string;
  epochs: number;
  history: EpochLine[];
  test?: { accuracy: number; count: number };
  seconds?: number;
  backend?: string;
  valSize?: number;
  command?: string[];
  /** From harness.json: the commit the harness started the run at, then any it resumed it at. */
  commits?: string[];
}

/** What the harness adds to a run's directory (the CLI does not know the commit it runs at). */
const HARNESS_FILE = 'harness.json';

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

async function state(dir: string, config: Config): Promise<RunState> {
  // biome-ignore lint/suspicious/noExplicitAny: run.json is read loosely, field by field
  const run = await readJson<Record<string, any>>(path.join(dir, config.name, 'run.json'));
  let history: EpochLine[] = [];
  try {
    history = (await fs.readFile(path.join(dir, config.name, 'metrics.jsonl'), 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  } catch {
    /* no epoch finished yet */
  }
  const harness = await readJson<{ commits?: string[] }>(path.join(dir, config.name, HARNESS_FILE));
  return {
    config,
    commits: harness?.commits,
    status: run?.status ?? 'not started',
    epochs: run?.options?.epochs ?? 0,
    history,
    test: run?.test,
    seconds: run?.seconds,
    backend: run?.backend?.description,
    valSize: run?.options?.valSize,
    command: run?.command,
  };
}

function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
const hours = (s: number) => (s >= 3600 ? `${(s / 3600).toFixed(1)} h` : `${Math.round(s / 60)} min`);

const COLUMNS: [string, 'left' | 'right'][] = [
  ['configuration', 'left'],
  ['command', 'left'],
  ['commit', 'left'],
  ['status', 'left'],
  ['epochs done', 'right'],
  ['test accuracy', 'right'],
  ['per-epoch accuracy (validation set)', 'left'],
  ['wall time', 'right'],
  ['compare with', 'left'],
];

/** A markdown table with its columns padded, as the repository's formatter (biome) writes it. */
function markdownTable(columns: [string, 'left' | 'right'][], rows: string[][]): string[] {
  const width = columns.map(([head], i) => Math.max(3, head.length, ...rows.map((r) => r[i].length)));
  const cell = (text: string, i: number) => (columns[i][1] === 'right' ? text.padStart(width[i]) : text.padEnd(width[i]));
  const line = (cells: string[]) => `| ${cells.map(cell).join(' | ')} |`;
  const rule = columns.map(([, align], i) => (align === 'right' ? `${'-'.repeat(width[i] - 1)}:` : '-'.repeat(width[i])));
  return [line(columns.map(([head]) => head)), `| ${rule.join(' | ')} |`, ...rows.map(line)];
}

/** The markdown between the markers in docs/results.md. */
export function section(states: RunState[], meta: { commit: string; machine: string; started: string; dir: string }): string {
  const lines = [
    BEGIN,
    `Harness: \`pnpm accuracy\` (packages/bench/src/accuracy.ts), last started ${meta.started} at commit ${meta.commit}, on ${meta.machine}. Runs in \`${meta.dir}\`. Commit: the one each run started at, then any it was resumed at (-: run before the harness recorded it).`,
    '',
  ];
  const rows: string[][] = [];
  for (const s of states) {
    const cmd = `\`vat train ${s.config.args.join(' ')}\``;
    const done = s.history.length;
    const wall = s.history.reduce((a, e) => a + e.seconds, 0);
    const perEpoch = s.history.map((e) => (100 * e.valAccuracy).toFixed(2)).join(', ');
    const valNote = s.valSize === 0 ? ' (the test set)' : s.valSize ? ` (${s.valSize} held-out)` : '';
    let projection = '';
    if (s.status !== 'finished' && done > 0 && s.epochs > done) projection = `; ${hours((wall / done) * (s.epochs - done))} to go`;
    rows.push([
      s.config.what,
      cmd,
      s.commits?.join(', ') ?? '-',
      s.status,
      `${done}${s.epochs ? `/${s.epochs}` : ''}`,
      s.test ? pct(s.test.accuracy) : '-',
      perEpoch ? `${perEpoch}${valNote}` : '-',
      done ? hours(wall) + projection : '-',
      s.config.target ? `${pct(s.config.target.accuracy)} (${s.config.target.source})` : '-',
    ]);
  }
  lines.push(...markdownTable(COLUMNS, rows));
  const backends = [...new Set(states.map((s) => s.backend).filter(Boolean))];
  lines.push('', `Backend: ${backends.join('; ') || 'none yet'}. Wall time is training plus validation, summed over the epochs done.`, END);
  return lines.join('\n');
}

async function writeSection(file: string, text: string): Promise<void> {
  let doc = existsSync(file) ? await fs.readFile(file, 'utf8') : '# Results\n';
  // Any `<!-- accuracy:begin ... -->` opens the section, so a hand-written short marker works too.
  const a = doc.indexOf('<!-- accuracy:begin');
  const b = a >= 0 ? doc.indexOf(END, a) : -1;
  if (a >= 0 && b > a) doc = doc.slice(0, a) + text + doc.slice(b + END.length);
  else doc = `${doc.trimEnd()}\n\n## Accuracy\n\n${text}\n`;
  await writeFileAtomic(file, doc);
}

function train(args: string[], log: (s: string) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'train', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d) => log(String(d)));
    child.stderr.on('data', (d) => log(String(d)));
    // Ctrl-C or kill reaches the CLI as SIGINT, so it writes a checkpoint; the listeners go
    // with the child, so a long harness does not collect one pair per configuration.
    const stop = () => child.kill('SIGINT');
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    child.on('error', reject);
    child.on('close', (code, sig) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(code ?? (sig ? 130 : 1));
    });
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: {
      only: { type: 'string' },
      dir: { type: 'string' },
      backend: { type: 'string' },
      results: { type: 'string' },
      'report-only': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(
      `usage: pnpm accuracy [--only ${CONFIGS.map((c) => c.name).join(',')}] [--dir runs/accuracy] [--backend auto|cpu|webgpu] [--results docs/results.md] [--report-only]`,
    );
    return 0;
  }
  const names = values.only?.split(',').map((s) => s.trim()) ?? CONFIGS.map((c) => c.name);
  const unknown = names.filter((n) => !CONFIGS.some((c) => c.name === n));
  if (unknown.length) throw new Error(`--only: unknown configuration '${unknown.join("', '")}'; use ${CONFIGS.map((c) => c.name).join(', ')}`);
  const configs = CONFIGS.filter((c) => names.includes(c.name));
  const dir = path.resolve(process.env.INIT_CWD ?? process.cwd(), values.dir ?? 'runs/accuracy');
  if (values.backend && !['auto', 'cpu', 'webgpu'].includes(values.backend)) throw new Error(`--backend: unknown '${values.backend}'; use auto, cpu or webgpu`);
  const cpus = os.cpus();
  const meta = {
    commit: commit(),
    machine: `${cpus[0]?.model ?? 'unknown CPU'} x ${cpus.length}, Node ${process.version}`,
    started: `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    dir: path.relative(ROOT, dir) || dir,
  };
  const results = values.results ? path.resolve(process.env.INIT_CWD ?? process.cwd(), values.results) : path.join(ROOT, 'docs/results.md');
  // The section covers every configuration, so a run of some (--only) keeps the others' rows.
  const report = async () => writeSection(results, section(await Promise.all(CONFIGS.map((c) => state(dir, c))), meta));
  await report();
  if (values['report-only']) return 0;
  let stopping = false;
  process.once('SIGINT', () => (stopping = true));
  process.once('SIGTERM', () => (stopping = true));
  for (const c of configs) {
    const s = await state(dir, c);
    if (s.status === 'finished') continue;
    const out = path.join(dir, c.name);
    const resume = existsSync(path.join(out, 'checkpoint.safetensors'));
    const args = resume ? ['--resume', out] : [...c.args, '--out', out, ...(values.backend ? ['--backend', values.backend] : [])];
    await fs.mkdir(out, { recursive: true });
    // A run resumed here that the harness did not start has no record of its first commit.
    const commits = resume ? (s.commits ?? ['unknown']) : [];
    if (commits.at(-1) !== meta.commit) await writeFileAtomic(path.join(out, HARNESS_FILE), `${JSON.stringify({ commits: [...commits, meta.commit] })}\n`);
    console.log(`== ${c.name}: vat train ${args.join(' ')}`);
    // Rewrite the section every minute while the run goes (it reads run.json and metrics.jsonl,
    // which the CLI writes after each epoch), and when it ends.
    const timer = setInterval(() => report().catch((e) => console.error(`could not update docs/results.md: ${e.message}`)), 60_000);
    const code = await train(args, (text) => process.stdout.write(text)).finally(() => clearInterval(timer));
    await report();
    if (code !== 0 || stopping) {
      console.log(`${c.name} ended with exit code ${code}${stopping ? ' (stopped)' : ''}; run pnpm accuracy again to resume`);
      return code || 130;
    }
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
