// The one error module on the TS side. Every error is a real `Error` whose `name` is stable:
// callers branch on the class or the name, not on the message. Tests check the class, and where
// the message's content is the behaviour (it names a file, a flag, a value), that content too.
// The core throws the same names (crates/vat-core/src/error.rs), and `fromCore` turns them into
// these classes.

export class VatError extends Error {
  override name = 'VatError';
}

/** Arrays or files whose contents or sizes do not fit (corrupt idx files among them). */
export class InvalidInputError extends VatError {
  override name = 'InvalidInputError';
}

/** An option or flag value that is unknown or out of range. */
export class InvalidConfigError extends VatError {
  override name = 'InvalidConfigError';
}

/** The loss became NaN or infinite; the weights were left as they were before the step. */
export class NonFiniteLossError extends VatError {
  override name = 'NonFiniteLossError';
}

/**
 * The loss stayed far above where the run started (see `train`): finite, but diverging; the
 * last checkpoint holds weights from before it.
 */
export class DivergedError extends VatError {
  override name = 'DivergedError';
}

/** A weights or checkpoint file that cannot be read or does not fit the model. */
export class WeightsFormatError extends VatError {
  override name = 'WeightsFormatError';
}

/** The requested backend cannot start (no WebGPU adapter, a missing feature or limit). */
export class BackendUnavailableError extends VatError {
  override name = 'BackendUnavailableError';
}

/** The device failed while running: a lost WebGPU device, or a trap inside the wasm core. */
export class BackendFailureError extends VatError {
  override name = 'BackendFailureError';
}

const byName: Record<string, new (message: string, options?: ErrorOptions) => VatError> = {
  InvalidInputError,
  InvalidConfigError,
  NonFiniteLossError,
  DivergedError,
  WeightsFormatError,
  BackendUnavailableError,
  BackendFailureError,
};

/**
 * Converts whatever the core threw into one of the classes above. The wasm module throws
 * `Error`s named after them; the native addon's errors carry the name as their `code`.
 */
export function fromCore(err: unknown): VatError {
  if (err instanceof VatError) return err;
  if (err instanceof Error) {
    const Cls = byName[err.name] ?? byName[(err as { code?: string }).code ?? ''];
    if (Cls) return new Cls(err.message.replace(/^[a-z ]+: /, ''), { cause: err });
    if (typeof WebAssembly !== 'undefined' && err instanceof WebAssembly.RuntimeError) {
      return new BackendFailureError(
        `the wasm core stopped on an internal error (${err.message}); the trainer cannot be used any more. ` +
          'Restart, and resume from the last checkpoint. If it recurs, report it with the run.json of the run.',
        { cause: err },
      );
    }
    return new BackendFailureError(err.message, { cause: err });
  }
  return new BackendFailureError(String(err));
}

/** Awaits a call into the core and rethrows its error as a typed one. */
export async function coreCall<T>(f: () => Promise<T> | T): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw fromCore(err);
  }
}
