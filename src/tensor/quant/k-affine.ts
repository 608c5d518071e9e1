/**
 * The shared quantizer of Q4_K and Q5_K: a 256-value super-block as 8 sub-blocks of 32, each
 * x ≈ d*sc[i]*q - dmin*mn[i] with 6-bit sc/mn, f16 d/dmin, and q in 0..nmax.
 * Writes d @0, dmin @2, the packed scales @4 (bytes 0..15 of the block) and returns the
 * quants in `levels` (256 values) for the caller to pack.
 */
import { roundNearest } from './bits.js';
import { writeScale } from './half.js';
import { fitAffine } from './k-fit.js';
import { packScalesMins } from './k-scales.js';

const QK_K = 256;
const SUB = 32;

const weights = new Float64Array(SUB);
const fitted = new Float64Array(2);
const subScales = new Float64Array(8);
const subMins = new Float64Array(8);
const sc = new Uint8Array(8);
const mn = new Uint8Array(8);

export function quantizeAffineSuperBlock(
  values: Float32Array, at: number, nmax: number, out: Uint8Array, p: number,
  levels: Uint8Array, format: string, block: number,
): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let ib = 0; ib < 8; ib++) {
    const o = at + ib * SUB;
    // Weights favour the larger values of the sub-block: rms(sub-block) + |x|.
    let sumX2 = 0;
    for (let l = 0; l < SUB; l++) sumX2 += values[o + l]! * values[o + l]!;
    const avX = Math.sqrt(sumX2 / SUB);
    for (let l = 0; l < SUB; l++) weights[l] = avX + Math.abs(values[o + l]!);
    fitAffine(values, o, SUB, nmax, weights, levels.subarray(ib * SUB, ib * SUB + SUB), fitted);
    subScales[ib] = fitted[0]!;
    subMins[ib] = -fitted[1]!;
    if (subScales[ib]! > maxScale) maxScale = subScales[ib]!;
    if (subMins[ib]! > maxMin) maxMin = subMins[ib]!;
  }

  const d = writeScale(out, p, maxScale / 63, format, block);
  const dmin = writeScale(out, p + 2, maxMin / 63, format, block);
  const invD = d > 0 ? 1 / d : 0;
  const invMin = dmin > 0 ? 1 / dmin : 0;
  for (let ib = 0; ib < 8; ib++) {
    sc[ib] = clamp(roundNearest(subScales[ib]! * invD), 0, 63);
    mn[ib] = clamp(roundNearest(subMins[ib]! * invMin), 0, 63);
  }
  packScalesMins(out, p + 4, sc, mn);

  // Re-quantize against the scales as they will be decoded.
  for (let ib = 0; ib < 8; ib++) {
    const o = at + ib * SUB;
    const step = d * sc[ib]!;
    const offset = dmin * mn[ib]!;
    const inv = step > 0 ? 1 / step : 0;
    for (let l = 0; l < SUB; l++) {
      levels[ib * SUB + l] = clamp(roundNearest((values[o + l]! + offset) * inv), 0, nmax);
    }
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
