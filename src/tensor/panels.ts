/**
 * The k-major panel layout of an f32 weight [rows, cols], which Backend.matmulKMajor and
 * Backend.moeExperts read: panel p is [cols, 16] (rows 16p..16p+15, zero padded past the last
 * row), the panels one after another. Row r, column c is at (r >> 4)·16·cols + c·16 + (r & 15).
 */

/** Values of the k-major panels of a [rows, cols] weight (rows padded to a multiple of 16). */
export function panelLength(rows: number, cols: number): number {
  return cols * Math.ceil(rows / 16) * 16;
}

/** Writes values [rows, cols] (row-major) into target (panelLength values, zeroed) as k-major panels (transposedOf). */
export function writePanels(target: Float32Array, values: Float32Array, rows: number, cols: number): void {
  if (target.length < panelLength(rows, cols) || values.length < rows * cols) throw new Error(`writePanels: [${rows}, ${cols}] does not fit`);
  for (let r = 0; r < rows; r++) {
    const panel = (r >> 4) * 16 * cols + (r & 15);
    for (let c = 0; c < cols; c++) target[panel + c * 16] = values[r * cols + c]!;
  }
}
