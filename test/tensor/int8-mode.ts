/**
 * The int8-activation mode of the native addon as the tests expect it from the environment:
 * FRUGAL_INT8 read as the addon reads it (native/src/addon.cc parseInt8), and what a SIMD level
 * makes of it (only avx512-vnni and avx2 have int8 kernels, only avx512-vnni has 'all').
 */
export type Int8Mode = 'off' | 'prefill' | 'all';

/** The mode FRUGAL_INT8 asks for: 0 | off, prefill, 1 | all; unset or anything else, prefill. */
export function requestedInt8Mode(value = process.env.FRUGAL_INT8 ?? ''): Int8Mode {
  if (value === '0' || value === 'off') return 'off';
  if (value === '1' || value === 'all') return 'all';
  return 'prefill';
}

/** The mode in effect at `level` when `requested` is asked for. */
export function int8ModeAt(level: string, requested: Int8Mode = requestedInt8Mode()): Int8Mode {
  if (requested === 'off' || (level !== 'avx512-vnni' && level !== 'avx2')) return 'off';
  return requested === 'all' && level === 'avx512-vnni' ? 'all' : 'prefill';
}
