// Reading the weights file that Trainer.exportWeights() writes (safetensors: a u64 little-endian
// header length, a JSON header, then the raw tensors). The layout is in the project README.
import { WeightsFormatError } from './errors.js';

/** The parameters in the order `inspect` takes them concatenated (crates/vat-core/src/model.rs). */
export const PARAMETER_NAMES = ['conv1.weight', 'conv1.bias', 'conv2.weight', 'conv2.bias', 'fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias'] as const;

interface Header {
  __metadata__?: Record<string, string>;
  [name: string]: unknown;
}

function header(bytes: Uint8Array, what: string): { header: Header; dataStart: number } {
  if (bytes.length < 8) throw new WeightsFormatError(`${what} is ${bytes.length} bytes long, too short to be a safetensors file`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n <= 0 || n > bytes.length - 8) throw new WeightsFormatError(`${what} is not a safetensors file (its header length is ${n})`);
  try {
    return { header: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n))) as Header, dataStart: 8 + n };
  } catch {
    throw new WeightsFormatError(`${what} is not a safetensors file (its header is not JSON)`);
  }
}

/** The model config recorded in the file's metadata (empty when the file has none). */
export function modelConfig(bytes: Uint8Array, what = 'the weights file'): Record<string, unknown> {
  const config = header(bytes, what).header.__metadata__?.model_config;
  if (!config) return {};
  try {
    return JSON.parse(config) as Record<string, unknown>;
  } catch {
    throw new WeightsFormatError(`${what} has a model_config that is not JSON`);
  }
}

/** The eight parameter tensors concatenated in PARAMETER_NAMES order, as `inspect` wants them. */
export function flatWeights(bytes: Uint8Array, what = 'the weights file'): Float32Array {
  const { header: h, dataStart } = header(bytes, what);
  const parts = PARAMETER_NAMES.map((name) => {
    const t = h[name] as { dtype?: string; data_offsets?: [number, number] } | undefined;
    if (!t?.data_offsets || t.dtype !== 'F32') throw new WeightsFormatError(`${what} has no float32 tensor '${name}'`);
    const [a, b] = t.data_offsets;
    // slice() copies, so the Float32Array is aligned whatever the header length was.
    return new Float32Array(bytes.slice(dataStart + a, dataStart + b).buffer);
  });
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
