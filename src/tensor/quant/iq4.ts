/**
 * The non-linear 4-bit formats: each 4-bit code q stands for K[q] of a fixed codebook,
 * K = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}.
 *
 * IQ4_NL (18 bytes / 32 values): @0 f16 d | @2 u8 qs[16];
 *   x[j] = d * K[qs[j] & 15], x[j+16] = d * K[qs[j] >> 4] for j in 0..15.
 * IQ4_XS (136 bytes / 256 values): @0 f16 d | @2 u16 scales_h | @4 u8 scales_l[4] | @8 u8 qs[128];
 *   sub-block ib (0..7) has the 6-bit scale ls = ((scales_l[ib/2] >> 4*(ib%2)) & 15)
 *   | (((scales_h >> 2*ib) & 3) << 4), dl = d * (ls - 32), and
 *   x[32ib+j] = dl * K[qs[16ib+j] & 15], x[32ib+j+16] = dl * K[qs[16ib+j] >> 4].
 *
 * Quantize (no importance matrix): per 32 values, 30 candidate scales that put the largest value
 * near either end of the codebook, each with the nearest code per value and the least-squares
 * scale for those codes; the candidate with the least squared error wins. (ggml's reference
 * quantizer searches one side, weighting each value's error by x²; plain squared error gives a
 * lower RMSE, see test/tensor/quant-ggml-oracle.test.ts.) IQ4_XS then expresses the eight
 * sub-block scales as 6-bit multiples of one f16 d (the largest maps to -32), also trying the
 * neighbouring multiples and keeping the one with the least squared error.
 */
import { readHalf, writeScale } from './half.js';
import { roundNearest } from './bits.js';

export const IQ4_CODEBOOK: readonly number[] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
const K = Float64Array.from(IQ4_CODEBOOK);
/** MID[i]: halfway between K[i] and K[i+1] (a value at a midpoint takes the upper code, as in ggml). */
const MID = Float64Array.from({ length: 15 }, (_, i) => (K[i]! + K[i + 1]!) / 2);

const QK_NL = 32;
const BYTES_NL = 18;
const QK_XS = 256;
const BYTES_XS = 136;
/** Candidate scales per side of the codebook: ±STEPS around the end value. */
const STEPS = 7;

/** The code whose codebook value is nearest to v, by binary search over the midpoints. */
function searchCode(v: number): number {
  let lo = 0;
  let hi = 15;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (v >= MID[mid]!) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Every midpoint is a multiple of 1/2, so the code is constant on each [k/2, (k+1)/2): CODE_AT[k + 320]
 * holds it for k/2 in [-160, 160), and values beyond take the end codes.
 */
const CODE_AT = Uint8Array.from({ length: 640 }, (_, i) => searchCode((i - 320) / 2 + 0.25));

/** The code whose codebook value is nearest to v (searchCode, by table; a midpoint takes the upper code). */
export function nearestCode(v: number): number {
  const i = v * 2 + 320;
  return CODE_AT[i < 0 ? 0 : i >= 639 ? 639 : i | 0]!;
}

export function dequantizeIQ4_NL(src: Uint8Array, blocks: number, out: Float32Array): void {
  for (let b = 0; b < blocks; b++) {
    const p = b * BYTES_NL;
    const d = readHalf(src, p);
    const o = b * QK_NL;
    for (let j = 0; j < 16; j++) {
      const q = src[p + 2 + j]!;
      out[o + j] = d * K[q & 0xf]!;
      out[o + j + 16] = d * K[q >> 4]!;
    }
  }
}

export function dequantizeIQ4_XS(src: Uint8Array, blocks: number, out: Float32Array): void {
  for (let b = 0; b < blocks; b++) {
    const p = b * BYTES_XS;
    const d = readHalf(src, p);
    const scalesH = src[p + 2]! | (src[p + 3]! << 8);
    for (let ib = 0; ib < 8; ib++) {
      const ls = ((src[p + 4 + (ib >> 1)]! >> (4 * (ib & 1))) & 0xf) | (((scalesH >> (2 * ib)) & 3) << 4);
      const dl = Math.fround(d * (ls - 32));
      const q = p + 8 + 16 * ib;
      const o = b * QK_XS + 32 * ib;
      for (let j = 0; j < 16; j++) {
        const byte = src[q + j]!;
        out[o + j] = dl * K[byte & 0xf]!;
        out[o + j + 16] = dl * K[byte >> 4]!;
      }
    }
  }
}

/**
 * The best scale for values[o .. o+32) (0 for an all-zero block), by the weighted least-squares
 * criterion of the file comment: maximizes (Σ q·x)² / Σ q² over the candidates, which is the
 * least squared error of each candidate's codes at their best scale.
 */
function fitScale(values: Float32Array, o: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < 32; j++) {
    const v = values[o + j]!;
    const a = Math.abs(v);
    if (a > amax) {
      amax = a;
      max = v;
    }
  }
  if (amax < 1e-15) return 0;
  let bestScale = 0;
  let best = -1;
  // Candidates: the largest value near K[0] = -127 (negative scale for a positive max), or near K[15] = 113.
  for (let side = 0; side < 2; side++) {
    const end = side === 0 ? K[0]! : K[15]!;
    for (let step = -STEPS; step <= STEPS; step++) {
      const id = (end + step) / max;
      let sumqx = 0;
      let sumq2 = 0;
      for (let j = 0; j < 32; j++) {
        const x = values[o + j]!;
        const q = K[nearestCode(id * x)]!;
        sumqx += q * x;
        sumq2 += q * q;
      }
      if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
        bestScale = sumqx / sumq2;
        best = bestScale * sumqx;
      }
    }
  }
  return bestScale;
}

/** Codes of values[o .. o+32) for scale d (stored low nibbles 0..15, high 16..31) at out[at .. at+16). */
function writeCodes(values: Float32Array, o: number, d: number, out: Uint8Array, at: number): void {
  const id = d !== 0 ? 1 / d : 0;
  for (let j = 0; j < 16; j++) {
    out[at + j] = nearestCode(values[o + j]! * id) | (nearestCode(values[o + j + 16]! * id) << 4);
  }
}

/** Σ (x - d·K[code])² of a sub-block coded with scale d. */
function weightedError(values: Float32Array, o: number, d: number): number {
  const id = d !== 0 ? 1 / d : 0;
  let err = 0;
  for (let j = 0; j < 32; j++) {
    const x = values[o + j]!;
    const e = x - d * K[nearestCode(x * id)]!;
    err += e * e;
  }
  return err;
}

export function quantizeIQ4_NL(values: Float32Array, out: Uint8Array): void {
  const blocks = values.length / QK_NL;
  for (let b = 0; b < blocks; b++) {
    const o = b * QK_NL;
    const p = b * BYTES_NL;
    const d = writeScale(out, p, fitScale(values, o), 'iq4_nl', b);
    writeCodes(values, o, d, out, p + 2);
  }
}

const subScales = new Float64Array(8);

export function quantizeIQ4_XS(values: Float32Array, out: Uint8Array): void {
  const blocks = values.length / QK_XS;
  for (let b = 0; b < blocks; b++) {
    const o = b * QK_XS;
    const p = b * BYTES_XS;
    let maxScale = 0;
    for (let ib = 0; ib < 8; ib++) {
      const s = fitScale(values, o + 32 * ib);
      subScales[ib] = s;
      if (Math.abs(s) > Math.abs(maxScale)) maxScale = s;
    }
    const d = writeScale(out, p, -maxScale / 32, 'iq4_xs', b);
    const id = d !== 0 ? 1 / d : 0;
    let scalesH = 0;
    for (let ib = 0; ib < 8; ib++) {
      const sub = o + 32 * ib;
      const l0 = Math.max(-32, Math.min(31, roundNearest(subScales[ib]! * id)));
      let l = l0;
      if (d !== 0) {
        let bestErr = weightedError(values, sub, Math.fround(d * l0));
        for (const c of [l0 - 1, l0 + 1]) {
          if (c < -32 || c > 31) continue;
          const err = weightedError(values, sub, Math.fround(d * c));
          if (err < bestErr) {
            bestErr = err;
            l = c;
          }
        }
      }
      writeCodes(values, sub, Math.fround(d * l), out, p + 8 + 16 * ib);
      const ls = l + 32;
      out[p + 4 + (ib >> 1)] = out[p + 4 + (ib >> 1)]! | ((ls & 0xf) << (4 * (ib & 1)));
      scalesH |= (ls >> 4) << (2 * ib);
    }
    out[p + 2] = scalesH & 0xff;
    out[p + 3] = scalesH >>> 8;
  }
}
