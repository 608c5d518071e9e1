/**
 * `frugal quantize IN.gguf OUT.gguf TYPE`: a GGUF with its weight matrices stored as TYPE, the way
 * llama-quantize makes one: one type for every matrix (its *_S presets), or for q4_k_m / q5_k_m
 * Q6_K for the output and some attn_v / ffn_down (schemeType). Every tensor with two
 * or more dimensions whose rows split into TYPE's blocks is converted (decoded to f32, then
 * encoded); 1-D tensors (norms, biases), MoE routers (`ffn_gate_inp`, which llama.cpp keeps in
 * f32) and rows that do not fit the block (a K-quant needs rows of 256: then Q8_0 when rows of
 * 32 fit; IQ4_XS falls back to IQ4_NL, as llama-quantize does; else the tensor stays as it is)
 * keep their type. Metadata is copied, with
 * general.file_type set. A source already quantized needs --allow-requantize (quality loss twice).
 */
import { parseArgs } from 'node:util';
import { openGguf, type GgufTensorInfo } from '../formats/gguf.js';
import type { GgufValue } from '../formats/gguf-value.js';
import { writeGguf, type GgufTensorInput } from '../formats/gguf-write.js';
import { type DType, dtypeInfo } from '../tensor/dtype.js';
import { canDequantize, canQuantize, dequantize, quantize } from '../tensor/quant/index.js';

export const summary = 'convert a GGUF model\'s weight matrices to another type (q8_0, q4_k, iq4_xs, ...)';

const USAGE = `usage: frugal quantize IN.gguf OUT.gguf TYPE [--allow-requantize]
  TYPE: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k (= q4_k_s), q5_k (= q5_k_s), q6_k,
        iq4_nl, iq4_xs (rows that are not a multiple of 256 as iq4_nl),
        q4_k_m, q5_k_m (Q6_K for the output and for attn_v / ffn_down of some layers, as llama-quantize)`;

/**
 * llama.cpp's llama_ftype for a file whose matrices are all `type` (the *_S presets for K-quants;
 * MOSTLY_IQ4_NL = 25 and MOSTLY_IQ4_XS = 30 as in node-llama-cpp's GgufFileType).
 */
const FILE_TYPES: Partial<Record<DType, number>> = {
  f32: 0, f16: 1, q4_0: 2, q4_1: 3, q8_0: 7, q5_0: 8, q5_1: 9, q2_k: 10, q3_k: 11, q4_k: 14, q5_k: 16, q6_k: 18, bf16: 32,
  iq4_nl: 25, iq4_xs: 30,
};

/** A quantization preset: one type for the matrices, or (the _M presets) Q6_K for the sensitive ones. */
export interface QuantScheme {
  base: DType;
  /** The type of the output matrix and of attn_v / ffn_down in the layers useMoreBits picks (_M presets). */
  more?: DType;
  fileType: number;
}

/** The preset a TYPE argument names, or undefined. */
export function quantScheme(name: string): QuantScheme | undefined {
  const lower = name.toLowerCase();
  if (lower === 'q4_k_m') return { base: 'q4_k', more: 'q6_k', fileType: 15 };
  if (lower === 'q5_k_m') return { base: 'q5_k', more: 'q6_k', fileType: 17 };
  const base = (lower === 'q4_k_s' ? 'q4_k' : lower === 'q5_k_s' ? 'q5_k' : lower) as DType;
  const fileType = FILE_TYPES[base];
  return fileType === undefined ? undefined : { base, fileType };
}

/** llama-quantize's choice of layers that keep more bits in the _M presets: the first and last eighth, and every third between. */
export function useMoreBits(layer: number, layers: number): boolean {
  const eighth = Math.floor(layers / 8);
  return layer < eighth || layer >= Math.floor((7 * layers) / 8) || (layer - eighth) % 3 === 2;
}

/** The type a scheme asks for a tensor (before the block-size fallback of quantizedType). */
export function schemeType(scheme: QuantScheme, name: string, layers: number): DType {
  if (!scheme.more) return scheme.base;
  if (name === 'output.weight') return scheme.more;
  const layer = /^blk\.(\d+)\.(attn_v|ffn_down)/.exec(name);
  return layer && useMoreBits(Number(layer[1]), layers) ? scheme.more : scheme.base;
}

/** Types that hold a weight without (noticeable) loss: converting from or to them is no requantization. */
const FLOAT_TYPES = new Set<DType>(['f32', 'f16', 'bf16']);

/** The type a tensor gets: `target` when its rows fit the blocks, a fallback, or its own type. */
export function quantizedType(info: Pick<GgufTensorInfo, 'name' | 'dims' | 'dtype'>, target: DType): DType {
  if (info.dims.length < 2 || !info.name.endsWith('.weight') || info.name.includes('ffn_gate_inp')) return info.dtype;
  const rowLength = info.dims[0]!;
  if (rowLength % dtypeInfo(target).blockElements === 0) return target;
  if (target === 'iq4_xs' && rowLength % 32 === 0) return 'iq4_nl';
  if (dtypeInfo(target).blockElements === 256 && rowLength % 32 === 0) return 'q8_0';
  return info.dtype;
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
export function quantizeGguf(input: string, output: string, type: string, options: { allowRequantize?: boolean; progress?: (done: number, total: number, name: string) => void } = {}): QuantizeReport {
  const scheme = quantScheme(type);
  if (!scheme || !canQuantize(scheme.base)) throw new Error(`quantize: unknown type '${type}'`);
  const target = scheme.base;
  const file = openGguf(input);
  try {
    const architecture = file.value('general.architecture');
    const layers = Number(file.value(`${String(architecture)}.block_count`) ?? 0);
    const plan = file.tensors.map((t) => {
      const wanted = schemeType(scheme, t.name, layers);
      return { info: t, wanted, type: quantizedType(t, wanted) };
    });
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
  const { values, positionals } = parseArgs({ args, options: { 'allow-requantize': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 3) {
    console.error(USAGE);
    return 2;
  }
  const [input, output, type] = positionals as [string, string, string];
  if (!quantScheme(type)) {
    console.error(`frugal quantize: unknown type '${type}'\n${USAGE}`);
    return 2;
  }
  if (input === output) throw new Error('quantize: write to another file than the input (it is read while the output is written)');
  const started = performance.now();
  let shown = 0;
  const report = quantizeGguf(input, output, type, {
    allowRequantize: values['allow-requantize'] ?? false,
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
