// The options form: one input per entry of @vat/core's OPTIONS (the table the CLI's flags come
// from too), showing a preset as the core resolves it; nothing here restates a default.
import { type ModelSpec, OPTIONS, type OptionSpec, type RunOptions } from '@vat/core';

import { call } from './client.js';
import { PRESETS } from './presets.js';
import { $, asWire, field, form, showError } from './state.js';

/** The form's fieldsets: OPTIONS by group. */
const FIELDSETS: [string, OptionSpec['group'][]][] = [
  ['data and loop', ['loop']],
  ['model and VAT', ['model', 'vat']],
  ['optimiser and engine', ['optimizer', 'engine']],
];
const OPTION_ENTRIES = Object.entries(OPTIONS) as [keyof RunOptions, OptionSpec][];

/** Builds one input per option, before the form's buttons, and listens to the ones that move others. */
export function buildForm(): void {
  const controls = form.querySelector('.controls')!;
  for (const [legend, groups] of FIELDSETS) {
    const set = document.createElement('fieldset');
    set.innerHTML = `<legend>${legend}</legend>`;
    for (const [key, spec] of OPTION_ENTRIES.filter(([, o]) => groups.includes(o.group))) {
      const label = document.createElement('label');
      label.title = spec.help;
      if (spec.kind === 'boolean') {
        label.className = 'check';
        label.innerHTML = `<input name="${key}" type="checkbox" /> ${key}`;
      } else if (spec.kind === 'choice') {
        label.innerHTML = `${key} <select name="${key}">${spec.choices!.map((c) => `<option value="${c}">${c}</option>`).join('')}</select>`;
      } else {
        const min = spec.min ?? 0;
        label.innerHTML = `${key} <input name="${key}" type="number" min="${min}" step="${spec.kind === 'int' ? 1 : 'any'}" placeholder="${key === 'threads' ? 'every core' : 'off'}" />`;
      }
      set.append(label);
    }
    form.insertBefore(set, controls);
  }
  const preset = field('preset') as HTMLSelectElement;
  preset.innerHTML = Object.keys(PRESETS)
    .map((k) => `<option value="${k}">${k}</option>`)
    .join('');

  preset.addEventListener('change', () => void applyPreset(preset.value).catch((err) => showError('train', asWire(err))));
  // Another optimiser brings its own default learning rate.
  field('optimizer').addEventListener(
    'change',
    () =>
      void call('resolveOptions', { optimizer: field('optimizer').value as RunOptions['optimizer'] })
        .then((r) => {
          field('lr').value = String(r.loop.lr);
        })
        .catch((err) => showError('train', asWire(err))),
  );
}

/** Shows a preset's options with every default filled in (the core's, resolved by the worker). */
export async function applyPreset(name: string): Promise<void> {
  const preset = PRESETS[name]!;
  const r = await call('resolveOptions', preset.options);
  const o: Record<string, unknown> = { ...r.trainer, ...r.loop };
  for (const [key, spec] of OPTION_ENTRIES) {
    const el = field(key);
    if (spec.kind === 'boolean') (el as HTMLInputElement).checked = !!o[key];
    else el.value = o[key] === undefined || o[key] === null ? '' : String(o[key]);
  }
  $('preset-description').textContent = preset.description;
}

/** A model spec the user loaded from a file, which takes the place of the model choice. */
let specFromFile: { spec: ModelSpec; file: string } | undefined;

/**
 * The model choice: the core's presets (the worker asks the core, which holds them), or a model
 * spec from a JSON file. The chosen model is built for the loaded data when a run starts.
 */
export async function installModelPicker(): Promise<void> {
  const select = field('model') as HTMLSelectElement;
  const presets = await call('modelPresets');
  for (const p of presets) {
    const o = new Option(p.name, p.name);
    o.title = p.description;
    select.append(o);
  }
  const describe = () => {
    const p = presets.find((q) => q.name === select.value);
    $('model-description').textContent = specFromFile
      ? `${specFromFile.file}: ${specFromFile.spec.layers.length} layers, input ${specFromFile.spec.input.join('x')}, ${specFromFile.spec.classes} classes`
      : (p?.description ?? '');
  };
  select.addEventListener('change', () => {
    specFromFile = undefined;
    ($('model-spec') as HTMLInputElement).value = '';
    describe();
  });
  $('model-spec').addEventListener('change', async (e) => {
    const file = (e.currentTarget as HTMLInputElement).files?.[0];
    if (!file) return;
    try {
      specFromFile = { spec: JSON.parse(await file.text()) as ModelSpec, file: file.name };
      select.value = '';
      showError('train', undefined);
    } catch (err) {
      specFromFile = undefined;
      showError('train', { name: 'InvalidInputError', message: `the model spec ${file.name} is not JSON: ${(err as Error).message}` });
    }
    describe();
  });
}

/** The run's options: the preset's (which carry rho and epsilon) overridden by the form. */
export function readOptions(): RunOptions {
  const preset = PRESETS[field('preset').value]!;
  const o: Record<string, unknown> = { ...preset.options };
  for (const [key, spec] of OPTION_ENTRIES) {
    const el = field(key);
    if (spec.kind === 'boolean') o[key] = (el as HTMLInputElement).checked;
    else if (el.value.trim() === '') delete o[key];
    else o[key] = spec.kind === 'choice' ? el.value : Number(el.value);
  }
  const model = (field('model') as HTMLSelectElement).value;
  if (specFromFile) {
    o.modelSpec = specFromFile.spec;
    delete o.model;
  } else if (model) o.model = model;
  return o as RunOptions;
}
