/**
 * llama.cpp's llama_ftype, the `general.file_type` of a GGUF file: what its weight matrices mostly
 * are, named as llama-quantize names them (values from llama.h; MOSTLY_IQ4_NL = 25 and
 * MOSTLY_IQ4_XS = 30 as in node-llama-cpp's GgufFileType). One table for what frugal quantize
 * writes and what the Ollama routes report.
 */
export const LLAMA_FILE_TYPES = {
  f32: 0, f16: 1, q4_0: 2, q4_1: 3, q8_0: 7, q5_0: 8, q5_1: 9, q2_k: 10, q3_k_s: 11, q3_k_m: 12, q3_k_l: 13,
  q4_k_s: 14, q4_k_m: 15, q5_k_s: 16, q5_k_m: 17, q6_k: 18, iq4_nl: 25, iq4_xs: 30, bf16: 32,
} as const;

export type LlamaFileTypeName = keyof typeof LLAMA_FILE_TYPES;

/** The llama.cpp name of a general.file_type value ("Q4_K_M"), or undefined for one this table lacks. */
export function llamaFileTypeName(fileType: number): string | undefined {
  const entry = Object.entries(LLAMA_FILE_TYPES).find(([, value]) => value === fileType);
  return entry?.[0].toUpperCase();
}
