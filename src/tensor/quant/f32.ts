/** float32 storage: little-endian copies (the host is little-endian on every supported platform). */

export function dequantizeF32(src: Uint8Array, count: number, out: Float32Array): void {
  const bytes = new Uint8Array(out.buffer, out.byteOffset, count * 4);
  bytes.set(src.subarray(0, count * 4));
}

export function quantizeF32(values: Float32Array, out: Uint8Array): void {
  out.set(new Uint8Array(values.buffer, values.byteOffset, values.length * 4));
}
