/**
 * The error thrown for a malformed or unsupported model file. The message names the file, the
 * field being read and the byte offset, e.g.
 *   "model.gguf: tensor_infos[3] 'blk.0.attn_q.weight' ne[1] at byte 1234: dimension is negative".
 */
export class FormatError extends Error {
  readonly file: string;
  readonly field: string;
  readonly offset: number | undefined;
  /** The message without the file/field/offset prefix. */
  readonly problem: string;

  constructor(file: string, field: string, offset: number | undefined, problem: string, options?: { cause?: unknown }) {
    super(`${file}: ${field}${offset === undefined ? '' : ` at byte ${offset}`}: ${problem}`, options);
    this.name = 'FormatError';
    this.file = file;
    this.field = field;
    this.offset = offset;
    this.problem = problem;
  }
}

/** Runs `parse`; any exception other than a FormatError (a RangeError from a bad length, say) becomes one. */
export function wrapFormatErrors<T>(file: string, field: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof FormatError) throw error;
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new FormatError(file, field, undefined, `unexpected failure while parsing (${message})`, { cause: error });
  }
}
