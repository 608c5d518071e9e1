/**
 * The 12-byte packing of eight 6-bit scales and eight 6-bit mins shared by Q4_K and Q5_K
 * (formats-and-api.md §1.5): bytes 0..3 hold sc[0..3] (bits 0..5) and bits 4..5 of sc[4..7]
 * (bits 6..7); bytes 4..7 the same for the mins; bytes 8..11 hold the low 4 bits of sc[4..7]
 * (low nibble) and of mn[4..7] (high nibble).
 */

export function unpackScalesMins(src: Uint8Array, at: number, sc: Uint8Array, mn: Uint8Array): void {
  for (let i = 0; i < 4; i++) {
    const s = src[at + i]!;
    const m = src[at + i + 4]!;
    const lowBits = src[at + i + 8]!;
    sc[i] = s & 63;
    mn[i] = m & 63;
    sc[i + 4] = (lowBits & 0xf) | ((s >> 6) << 4);
    mn[i + 4] = (lowBits >> 4) | ((m >> 6) << 4);
  }
}

/** Inverse of unpackScalesMins; every sc[i], mn[i] must be in 0..63. */
export function packScalesMins(out: Uint8Array, at: number, sc: ArrayLike<number>, mn: ArrayLike<number>): void {
  for (let i = 0; i < 4; i++) {
    const hiSc = sc[i + 4]!;
    const hiMn = mn[i + 4]!;
    out[at + i] = sc[i]! | ((hiSc >> 4) << 6);
    out[at + i + 4] = mn[i]! | ((hiMn >> 4) << 6);
    out[at + i + 8] = (hiSc & 0xf) | ((hiMn & 0xf) << 4);
  }
}
