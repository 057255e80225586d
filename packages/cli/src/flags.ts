// The CLI's flags: one per entry of @vat/core's OPTIONS (the web form is built from the same
// table), and the values the user typed.
import { promises as fs } from 'node:fs';

import { type Command, InvalidArgumentError, Option } from 'commander';
import { InvalidInputError, type ModelSpec, OPTIONS, type OptionSpec, PRESETS, type RunOptions } from '@vat/core';

export const int = (name: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!/^\s*-?\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
  return n;
};
export const num =
  (name: string, positive = true) =>
  (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || (positive ? n <= 0 : n < 0)) {
      throw new InvalidArgumentError(`${name} must be a ${positive ? 'positive' : 'non-negative'} number`);
    }
    return n;
  };

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** One flag per entry of @vat/core's OPTIONS (the web form is built from the same table). */
function optionFlags(): Option[] {
  const flags: Option[] = [];
  for (const [key, spec] of Object.entries(OPTIONS) as [string, OptionSpec][]) {
    const name = `--${kebab(key)}`;
    if (spec.kind === 'boolean') {
      flags.push(new Option(name, spec.help), new Option(`--no-${kebab(key)}`, `not ${name}`));
      continue;
    }
    const o = new Option(`${name} <${spec.kind === 'choice' ? 'name' : spec.kind === 'int' ? 'n' : 'x'}>`, spec.help);
    if (spec.kind === 'choice') o.choices(spec.choices!);
    else if (spec.kind === 'int') o.argParser(int(name, spec.min ?? 0));
    else o.argParser(num(name, spec.positive ?? false));
    flags.push(o);
  }
  return flags;
}

export function addTrainingOptions(cmd: Command, preset: string): Command {
  cmd.addOption(new Option('--preset <name>', 'named settings; flags override them').choices(Object.keys(PRESETS)).default(preset));
  for (const o of optionFlags()) cmd.addOption(o);
  return cmd
    .addOption(
      new Option(
        '--normalize <how>',
        'scale: pixel / 255 (the default); standardize: per-channel (x - mean) / std of the training images, kept in the weights file',
      ).choices(['scale', 'standardize']),
    )
    .option(
      '--model <name|file.json>',
      "the model: a preset (seed-cnn, the default; mlp-1200-600-300-150; mlp-1200-1200; conv-small; conv-large) or a JSON model spec's path (README: Models)",
    )
    .option(
      '--data <path>',
      'the data (default: the bundled MNIST): a directory of MNIST idx files, an image folder (one subfolder of PNG/JPEG per class, or train/ and test/ of them), a Kaggle-layout CSV (label, then pixels), a .npz, or a directory of .npy arrays',
    )
    .option(
      '--test-data <path>',
      'the test examples of a CSV or image-folder --data (without it, and without a test set in --data, --test-size examples are held out)',
    )
    .option('--test-size <n>', 'examples of --data held out as the test set when it has none (default: a tenth; the same ones in every run)')
    .option('--image-shape <CxHxW>', 'the image shape of flat CSV or array rows that are not square grey images, e.g. 3x32x32')
    .option('--train-images <file>', 'idx images file for training (with --train-labels)')
    .option('--train-labels <file>', 'idx labels file for training')
    .option('--test-images <file>', 'idx images file for testing (with --test-labels)')
    .option('--test-labels <file>', 'idx labels file for testing')
    .option('--json', 'print JSON lines on stdout (progress stays on stderr)');
}

/** The options the user typed (each flag of OPTIONS given on the command line). */
export function typedOptions(cmd: Command): RunOptions {
  const flags = cmd.opts();
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(OPTIONS)) if (cmd.getOptionValueSource(key) === 'cli') out[key] = flags[key];
  return out as RunOptions;
}

/** `--model`: a preset name as it is, or the model spec in a `.json` file (or any path). */
export async function modelFlag(value: string | undefined): Promise<{ model?: string; modelSpec?: ModelSpec }> {
  if (value === undefined) return {};
  if (!/\.json$/i.test(value) && !value.includes('/') && !value.includes('\\')) return { model: value };
  let text: string;
  try {
    text = await fs.readFile(value, 'utf8');
  } catch (e) {
    throw new InvalidInputError(`cannot read the model spec '${value}': ${(e as Error).message}`);
  }
  try {
    return { modelSpec: JSON.parse(text) as ModelSpec };
  } catch (e) {
    throw new InvalidInputError(`the model spec '${value}' is not JSON: ${(e as Error).message}`);
  }
}
