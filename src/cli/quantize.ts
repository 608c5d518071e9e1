/**
 * `frugal quantize IN.gguf OUT.gguf TYPE [--pure]`: a GGUF with its weight matrices converted the
 * way llama-quantize converts them.
 * - TYPE a preset of llama-quantize (q2_k, q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m, q5_k_s, q5_k_m,
 *   q6_k): each matrix gets the type llama-quantize's rules give it (quantize-mix.ts: Q6_K / Q8_0
 *   for the output, more bits for some attn_v / ffn_down / attn_output, Q8_0 attn_v / attn_k with
 *   8 experts, ...); with --pure every matrix gets the preset's base type (llama-quantize --pure).
 * - TYPE a plain type (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q3_k, q4_k, q5_k, iq4_nl,
 *   iq4_xs): that type for every matrix. (llama-quantize's "Q3_K", "Q4_K", "Q5_K" are aliases
 *   of its _M presets; here they name the plain type, as before.)
 * Rows that do not split into the chosen type's blocks get llama.cpp's fallback (Q2_K / Q3_K ->
 * Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, IQ4_XS -> IQ4_NL; F16 when rows are not a
 * multiple of 32 either). 1-D tensors (norms, biases), norms and MoE routers (`ffn_gate_inp`, which
 * llama.cpp keeps in f32) keep their type. Metadata is copied, with general.file_type set to the
 * preset's llama_ftype. A source already quantized needs --allow-requantize (quality loss twice).
 */
import { parseArgs } from 'node:util';
import { openGguf, type GgufTensorInfo } from '../formats/gguf.js';
import type { GgufValue } from '../formats/gguf-value.js';
import { writeGguf, type GgufTensorInput } from '../formats/gguf-write.js';
import { LLAMA_FILE_TYPES } from '../formats/gguf-file-type.js';
import type { DType } from '../tensor/dtype.js';
import { canDequantize, canQuantize, dequantize, quantize } from '../tensor/quant/index.js';
import { checkInputFile, checkOutputFile } from './file-checks.js';
import { K_MIXES, type KMix, type MixModelInfo, fallbackType, isKMix, isQuantizable, mixModelInfo, mixTypes } from './quantize-mix.js';

export { useMoreBits } from './quantize-mix.js';

export const summary = 'convert a GGUF model\'s weight matrices to another type (q8_0, q4_k_m, iq4_xs, ...)';

const USAGE = `usage: frugal quantize IN.gguf OUT.gguf TYPE [--pure] [--allow-requantize]
  TYPE: llama-quantize's presets q2_k, q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m, q5_k_s, q5_k_m, q6_k
        (its per-tensor choices: Q6_K output, more bits for some attn_v / ffn_down / attn_output;
        --pure: the preset's base type for every matrix),
        or one type for every matrix: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q3_k, q4_k, q5_k,
        iq4_nl, iq4_xs
  Rows that do not split into a type's blocks fall back as in llama.cpp (Q4_K -> Q5_0, Q6_K -> Q8_0, IQ4_XS -> IQ4_NL, ...).`;

/**
 * llama.cpp's llama_ftype for a file whose matrices are all `type` (K-quants: the *_S preset's
 * number, q3_k: Q3_K_S).
 */
const FILE_TYPES: Partial<Record<DType, number>> = {
  f32: LLAMA_FILE_TYPES.f32, f16: LLAMA_FILE_TYPES.f16, bf16: LLAMA_FILE_TYPES.bf16, q4_0: LLAMA_FILE_TYPES.q4_0, q4_1: LLAMA_FILE_TYPES.q4_1,
  q8_0: LLAMA_FILE_TYPES.q8_0, q5_0: LLAMA_FILE_TYPES.q5_0, q5_1: LLAMA_FILE_TYPES.q5_1, q2_k: LLAMA_FILE_TYPES.q2_k,
  q3_k: LLAMA_FILE_TYPES.q3_k_s, q4_k: LLAMA_FILE_TYPES.q4_k_s, q5_k: LLAMA_FILE_TYPES.q5_k_s, q6_k: LLAMA_FILE_TYPES.q6_k,
  iq4_nl: LLAMA_FILE_TYPES.iq4_nl, iq4_xs: LLAMA_FILE_TYPES.iq4_xs,
};

/** A quantization choice: one type for the matrices, or a llama-quantize preset (mix). */
export interface QuantScheme {
  base: DType;
  /** The llama-quantize preset whose per-tensor rules apply (absent: `base` for every matrix). */
  mix?: KMix;
  fileType: number;
}

/** The scheme a TYPE argument names (`pure`: a preset's base type everywhere), or undefined. */
export function quantScheme(name: string, pure = false): QuantScheme | undefined {
  const lower = name.toLowerCase();
  if (isKMix(lower)) {
    const { base, fileType } = K_MIXES[lower];
    return pure ? { base, fileType } : { base, mix: lower, fileType };
  }
  const base = lower as DType;
  const fileType = FILE_TYPES[base];
  return fileType === undefined ? undefined : { base, fileType };
}

/** Types that hold a weight without (noticeable) loss: converting from or to them is no requantization. */
const FLOAT_TYPES = new Set<DType>(['f32', 'f16', 'bf16']);

/** The type a tensor gets: `target` when its rows fit the blocks, llama.cpp's fallback (see fallbackType), or its own type when it is not converted. */
export function quantizedType(info: Pick<GgufTensorInfo, 'name' | 'dims' | 'dtype'>, target: DType): DType {
  if (!info.name.endsWith('.weight') || !isQuantizable(info)) return info.dtype;
  if (FLOAT_TYPES.has(target)) return target;
  return fallbackType(info.dims[0]!, target);
}

/** Each tensor's type under `scheme` (the tensors' own types where they are not converted). */
export function planTypes(scheme: QuantScheme, tensors: readonly Pick<GgufTensorInfo, 'name' | 'dims' | 'dtype'>[], model: MixModelInfo): Map<string, DType> {
  const wanted = scheme.mix ? mixTypes(scheme.mix, tensors, model) : undefined;
  return new Map(tensors.map((t) => [t.name, quantizedType(t, wanted?.get(t.name) ?? scheme.base)]));
}

export interface QuantizeReport {
  converted: number;
  kept: number;
  /** Tensors that got another type than asked (rows that do not fit the target's blocks): name -> type. */
  fallbacks: Map<string, DType>;
  bytesIn: number;
  bytesOut: number;
}

/** Writes `output`: `input` with its matrices as `type` names them (a DType or a preset; see the file comment). */
export function quantizeGguf(input: string, output: string, type: string, options: { allowRequantize?: boolean; pure?: boolean; progress?: (done: number, total: number, name: string) => void } = {}): QuantizeReport {
  const scheme = quantScheme(type, options.pure);
  if (!scheme || !canQuantize(scheme.base)) throw new Error(`quantize: unknown type '${type}'`);
  const target = scheme.base;
  const file = openGguf(input);
  try {
    const model = mixModelInfo((key) => file.value(key));
    const types = planTypes(scheme, file.tensors, model);
    const wantedTypes = scheme.mix ? mixTypes(scheme.mix, file.tensors, model) : undefined;
    const plan = file.tensors.map((t) => ({ info: t, wanted: wantedTypes?.get(t.name) ?? target, type: types.get(t.name)! }));
    const requantized = plan.find((p) => p.type !== p.info.dtype && !FLOAT_TYPES.has(p.info.dtype) && !FLOAT_TYPES.has(p.type));
    if (requantized && !options.allowRequantize) {
      throw new Error(`${input}: tensor '${requantized.info.name}' is already ${requantized.info.dtype}; quantizing it again loses quality twice (pass --allow-requantize to do it anyway)`);
    }
    const undecodable = plan.find((p) => p.type !== p.info.dtype && !canDequantize(p.info.dtype));
    if (undecodable) throw new Error(`${input}: tensor '${undecodable.info.name}' has type ${undecodable.info.dtype}, which cannot be decoded`);
    const report: QuantizeReport = { converted: 0, kept: 0, fallbacks: new Map(), bytesIn: 0, bytesOut: 0 };
    let done = 0;
    const tensors: GgufTensorInput[] = plan.map(({ info, wanted, type }) => {
      report.bytesIn += info.byteLength;
      if (type === info.dtype) report.kept++;
      else report.converted++;
      if (type !== info.dtype && type !== wanted) report.fallbacks.set(info.name, type);
      return {
        name: info.name, dims: info.dims, dtype: type,
        data: () => {
          const bytes = file.readTensorBytes(info);
          const out = type === info.dtype ? bytes : quantize(type, dequantize(info.dtype, bytes, info.elements));
          report.bytesOut += out.length;
          options.progress?.(++done, plan.length, info.name);
          return out;
        },
      };
    });
    const metadata = new Map<string, GgufValue>(file.metadata);
    metadata.set('general.file_type', { type: 'u32', value: scheme.fileType });
    if (!FLOAT_TYPES.has(target)) metadata.set('general.quantization_version', { type: 'u32', value: 2 });
    writeGguf(output, { metadata, tensors, alignment: file.alignment });
    return report;
  } finally {
    file.close();
  }
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { 'allow-requantize': { type: 'boolean' }, pure: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 3) {
    console.error(`frugal quantize: expected IN.gguf OUT.gguf TYPE, got ${positionals.length} argument${positionals.length === 1 ? '' : 's'}\n${USAGE}`);
    return 2;
  }
  const [input, output, type] = positionals as [string, string, string];
  if (!quantScheme(type)) {
    console.error(`frugal quantize: unknown type '${type}'\n${USAGE}`);
    return 2;
  }
  if (input === output) throw new Error('quantize: write to another file than the input (it is read while the output is written)');
  checkInputFile(input, 'IN.gguf');
  checkOutputFile(output, 'OUT.gguf');
  const started = performance.now();
  let shown = 0;
  const report = quantizeGguf(input, output, type, {
    allowRequantize: values['allow-requantize'] ?? false,
    pure: values.pure ?? false,
    // a progress line at most twice a second (and the last one), rewritten in place on a terminal
    progress: (done, total, name) => {
      const now = performance.now();
      if (now - shown < 500 && done < total) return;
      shown = now;
      const seconds = (now - started) / 1000;
      const eta = (seconds / done) * (total - done);
      const line = `[${done}/${total}] ${seconds.toFixed(1)} s, ETA ${eta.toFixed(0)} s  ${name}`;
      process.stderr.write(process.stderr.isTTY ? `\r${line.padEnd(80).slice(0, 80)}${done === total ? '\n' : ''}` : `${line}\n`);
    },
  });
  const mib = (n: number): string => (n / 1048576).toFixed(2);
  console.log(`${output}: ${report.converted} tensors converted (${type.toLowerCase()}), ${report.kept} kept; ${mib(report.bytesIn)} MiB -> ${mib(report.bytesOut)} MiB`);
  for (const [name, t] of report.fallbacks) console.log(`  ${name}: ${t} (its rows do not split into the blocks of the type asked)`);
  return 0;
}
