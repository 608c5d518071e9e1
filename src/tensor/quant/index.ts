/**
 * Storage-format codecs: bytes of a DType <-> f32 values (formats-and-api.md §1.5,
 * model-and-training.md §5). One file per format family; this module dispatches on the dtype.
 */
import { type DType, DTYPES } from '../dtype.js';
import { dequantizeBf16, quantizeBf16 } from './bf16.js';
import { dequantizeF16, quantizeF16 } from './f16.js';
import { dequantizeF32, quantizeF32 } from './f32.js';
import { dequantizeFp8, quantizeFp8 } from './fp8.js';
import { dequantizeIQ4_NL, dequantizeIQ4_XS, quantizeIQ4_NL, quantizeIQ4_XS } from './iq4.js';
import { dequantizeQ2_K, quantizeQ2_K } from './q2_k.js';
import { dequantizeQ3_K, quantizeQ3_K } from './q3_k.js';
import { dequantizeQ4_0, quantizeQ4_0 } from './q4_0.js';
import { dequantizeQ4_1, quantizeQ4_1 } from './q4_1.js';
import { dequantizeQ4_K, quantizeQ4_K } from './q4_k.js';
import { dequantizeQ5_0, quantizeQ5_0 } from './q5_0.js';
import { dequantizeQ5_1, quantizeQ5_1 } from './q5_1.js';
import { dequantizeQ5_K, quantizeQ5_K } from './q5_k.js';
import { dequantizeQ6_K, quantizeQ6_K } from './q6_k.js';
import { dequantizeQ8_0, quantizeQ8_0 } from './q8_0.js';
import { dequantizeQ8_K } from './q8_k.js';

export { bf16ToF32, f32ToBf16 } from './bf16.js';
export { F16_TABLE, f16ToF32, f32ToF16 } from './f16.js';
export { FP8_E4M3_MAX, FP8_TABLE, f32ToFp8E4M3, fp8E4M3ToF32 } from './fp8.js';
export {
  type Fp8ScaleOptions, dequantizeFp8BlockScaled, dequantizeFp8Tiles, quantizeFp8BlockScaled, quantizeFp8Tiles,
} from './fp8-scaled.js';

/** Decodes `blocks` whole blocks from src[0..] into out[0..blocks*blockElements). */
type BlockDecoder = (src: Uint8Array, blocks: number, out: Float32Array) => void;
/** Encodes values (a whole number of blocks) into out (exactly the right size, zero-filled). */
type BlockEncoder = (values: Float32Array, out: Uint8Array) => void;

const decoders: Partial<Record<DType, BlockDecoder>> = {
  f32: dequantizeF32,
  f16: dequantizeF16,
  bf16: dequantizeBf16,
  fp8_e4m3: dequantizeFp8,
  q4_0: dequantizeQ4_0,
  q4_1: dequantizeQ4_1,
  q5_0: dequantizeQ5_0,
  q5_1: dequantizeQ5_1,
  q8_0: dequantizeQ8_0,
  q2_k: dequantizeQ2_K,
  q3_k: dequantizeQ3_K,
  q4_k: dequantizeQ4_K,
  q5_k: dequantizeQ5_K,
  q6_k: dequantizeQ6_K,
  q8_k: dequantizeQ8_K,
  iq4_nl: dequantizeIQ4_NL,
  iq4_xs: dequantizeIQ4_XS,
};

const encoders: Partial<Record<DType, BlockEncoder>> = {
  f32: quantizeF32,
  f16: quantizeF16,
  bf16: quantizeBf16,
  fp8_e4m3: quantizeFp8,
  q4_0: quantizeQ4_0,
  q4_1: quantizeQ4_1,
  q5_0: quantizeQ5_0,
  q5_1: quantizeQ5_1,
  q8_0: quantizeQ8_0,
  q2_k: quantizeQ2_K,
  q3_k: quantizeQ3_K,
  q4_k: quantizeQ4_K,
  q5_k: quantizeQ5_K,
  q6_k: quantizeQ6_K,
  iq4_nl: quantizeIQ4_NL,
  iq4_xs: quantizeIQ4_XS,
};

/** Formats whose quantizer needs finite input (their block scales cannot carry inf/NaN). */
const needsFinite = new Set<DType>(['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'iq4_nl', 'iq4_xs']);

function infoOf(dtype: DType, what: string) {
  const info = DTYPES.get(dtype);
  if (!info) throw new Error(`${what}: unknown dtype '${String(dtype)}'`);
  return info;
}

export function canDequantize(dtype: DType): boolean {
  return Object.hasOwn(decoders, dtype);
}

export function canQuantize(dtype: DType): boolean {
  return Object.hasOwn(encoders, dtype);
}

/**
 * Decode the first `elements` values of `dtype` stored at the start of `src` into f32
 * (into `out` when given, which must hold at least `elements`; returns it).
 */
export function dequantize(dtype: DType, src: Uint8Array, elements: number, out?: Float32Array): Float32Array {
  const info = infoOf(dtype, 'dequantize');
  const decode = decoders[dtype];
  if (!decode) throw new Error(`dequantize: dtype '${dtype}' has no decoder`);
  if (!Number.isSafeInteger(elements) || elements < 0) {
    throw new Error(`dequantize ${dtype}: element count must be a non-negative integer, got ${elements}`);
  }
  if (elements % info.blockElements !== 0) {
    throw new Error(`dequantize ${dtype}: ${elements} elements is not a multiple of the block size ${info.blockElements}`);
  }
  const blocks = elements / info.blockElements;
  const bytes = blocks * info.blockBytes;
  if (src.length < bytes) {
    throw new Error(`dequantize ${dtype}: ${elements} elements need ${bytes} bytes, src has only ${src.length}`);
  }
  const target = out ?? new Float32Array(elements);
  if (target.length < elements) {
    throw new Error(`dequantize ${dtype}: out holds ${target.length} values, ${elements} needed`);
  }
  decode(src, blocks, target);
  return target;
}

/** Encode `values` as `dtype` (values.length must be a whole number of blocks); returns exactly blocks*blockBytes bytes. */
export function quantize(dtype: DType, values: Float32Array): Uint8Array {
  const info = infoOf(dtype, 'quantize');
  const encode = encoders[dtype];
  if (!encode) throw new Error(`quantize: dtype '${dtype}' has no quantizer`);
  if (values.length % info.blockElements !== 0) {
    throw new Error(`quantize ${dtype}: ${values.length} values is not a multiple of the block size ${info.blockElements}`);
  }
  if (needsFinite.has(dtype)) {
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i]!)) throw new Error(`quantize ${dtype}: value ${values[i]} at index ${i} is not finite`);
    }
  }
  const out = new Uint8Array((values.length / info.blockElements) * info.blockBytes);
  encode(values, out);
  return out;
}
