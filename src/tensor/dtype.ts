/**
 * Data types of tensor storage. Float types hold one element per slot; quantized types
 * store blocks of `blockElements` values in `blockBytes` bytes, with the exact ggml layouts
 * (see ../shared/spec/formats-and-api.md §1.5). FP8 E4M3 is stored one byte per value; its
 * 128x128 block scales travel beside the data (see WeightMatrix in ./tensor.ts).
 */
export type DType =
  | 'f32' | 'f16' | 'bf16' | 'f64'
  | 'i8' | 'i16' | 'i32' | 'i64'
  | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q8_0'
  | 'q2_k' | 'q3_k' | 'q4_k' | 'q5_k' | 'q6_k' | 'q8_k'
  | 'iq4_nl' | 'iq4_xs'
  | 'fp8_e4m3';

export interface DTypeInfo {
  readonly name: DType;
  /** Elements per block (1 for scalar types). */
  readonly blockElements: number;
  /** Bytes per block. */
  readonly blockBytes: number;
  /** ggml type id in GGUF files, or undefined where GGUF has none (fp8_e4m3). */
  readonly ggmlType: number | undefined;
  readonly quantized: boolean;
}

const table: DTypeInfo[] = [
  { name: 'f32', blockElements: 1, blockBytes: 4, ggmlType: 0, quantized: false },
  { name: 'f16', blockElements: 1, blockBytes: 2, ggmlType: 1, quantized: false },
  { name: 'q4_0', blockElements: 32, blockBytes: 18, ggmlType: 2, quantized: true },
  { name: 'q4_1', blockElements: 32, blockBytes: 20, ggmlType: 3, quantized: true },
  { name: 'q5_0', blockElements: 32, blockBytes: 22, ggmlType: 6, quantized: true },
  { name: 'q5_1', blockElements: 32, blockBytes: 24, ggmlType: 7, quantized: true },
  { name: 'q8_0', blockElements: 32, blockBytes: 34, ggmlType: 8, quantized: true },
  { name: 'q2_k', blockElements: 256, blockBytes: 84, ggmlType: 10, quantized: true },
  { name: 'q3_k', blockElements: 256, blockBytes: 110, ggmlType: 11, quantized: true },
  { name: 'q4_k', blockElements: 256, blockBytes: 144, ggmlType: 12, quantized: true },
  { name: 'q5_k', blockElements: 256, blockBytes: 176, ggmlType: 13, quantized: true },
  { name: 'q6_k', blockElements: 256, blockBytes: 210, ggmlType: 14, quantized: true },
  { name: 'q8_k', blockElements: 256, blockBytes: 292, ggmlType: 15, quantized: true },
  { name: 'iq4_nl', blockElements: 32, blockBytes: 18, ggmlType: 20, quantized: true },
  { name: 'iq4_xs', blockElements: 256, blockBytes: 136, ggmlType: 23, quantized: true },
  { name: 'i8', blockElements: 1, blockBytes: 1, ggmlType: 24, quantized: false },
  { name: 'i16', blockElements: 1, blockBytes: 2, ggmlType: 25, quantized: false },
  { name: 'i32', blockElements: 1, blockBytes: 4, ggmlType: 26, quantized: false },
  { name: 'i64', blockElements: 1, blockBytes: 8, ggmlType: 27, quantized: false },
  { name: 'f64', blockElements: 1, blockBytes: 8, ggmlType: 28, quantized: false },
  { name: 'bf16', blockElements: 1, blockBytes: 2, ggmlType: 30, quantized: false },
  { name: 'fp8_e4m3', blockElements: 1, blockBytes: 1, ggmlType: undefined, quantized: true },
];

export const DTYPES: ReadonlyMap<DType, DTypeInfo> = new Map(table.map((info) => [info.name, info]));
const byGgmlType = new Map(table.filter((i) => i.ggmlType !== undefined).map((i) => [i.ggmlType!, i]));

export function dtypeInfo(dtype: DType): DTypeInfo {
  const info = DTYPES.get(dtype);
  if (!info) throw new Error(`unknown dtype '${dtype}'`);
  return info;
}

/** The dtype of a ggml type id, or undefined when the id is unknown or unsupported. */
export function dtypeOfGgmlType(id: number): DTypeInfo | undefined {
  return byGgmlType.get(id);
}

/** Bytes needed by `elements` values of `dtype`; throws when elements is not a whole number of blocks. */
export function byteSize(dtype: DType, elements: number): number {
  const info = dtypeInfo(dtype);
  if (elements % info.blockElements !== 0) {
    throw new Error(`${elements} elements is not a multiple of the ${dtype} block size ${info.blockElements}`);
  }
  return (elements / info.blockElements) * info.blockBytes;
}
