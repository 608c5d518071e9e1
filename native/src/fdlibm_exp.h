// exp() exactly as V8's Math.exp computes it (fdlibm's e_exp.c, as ported in V8's
// src/base/ieee754.cc), for the sampler's softmax weights: the same doubles as the TypeScript
// loop, so seeded sampling picks the same tokens, in one call per step instead of one Math.exp
// call per vocabulary entry, 8 lanes at a time on AVX-512 and 4 on AVX2. No FMA contraction: every product and
// sum rounds as in fdlibm (test/generate/sampling-exp.test.ts checks every branch bit for bit).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#if defined(__x86_64__)
#include <immintrin.h>

#include "target.h"
#endif

namespace frugal {
namespace {

inline double fdlibmExp(double x) {
  const double one = 1.0, halF[2] = {0.5, -0.5}, oThreshold = 7.09782712893383973096e+02,
               uThreshold = -7.45133219101941108420e+02, ln2HI[2] = {6.93147180369123816490e-01, -6.93147180369123816490e-01},
               ln2LO[2] = {1.90821492927058770002e-10, -1.90821492927058770002e-10}, invln2 = 1.44269504088896338700e+00,
               P1 = 1.66666666666666019037e-01, P2 = -2.77777777770155933842e-03, P3 = 6.61375632143793436117e-05,
               P4 = -1.65339022054652515390e-06, P5 = 4.13813679705723846039e-08, E = 2.718281828459045;
  const double huge = 1.0e+300, twom1000 = 9.33263618503218878990e-302, two1023 = 8.988465674311579539e307;
  uint64_t bits;
  std::memcpy(&bits, &x, 8);
  uint32_t hx = static_cast<uint32_t>(bits >> 32);
  const int32_t xsb = (hx >> 31) & 1;
  hx &= 0x7fffffff;
  double hi = 0.0, lo = 0.0;
  int32_t k = 0;
  if (hx >= 0x40862E42) {
    if (hx >= 0x7ff00000) {
      if (((hx & 0xfffff) | static_cast<uint32_t>(bits)) != 0) return x + x;
      return xsb == 0 ? x : 0.0;
    }
    if (x > oThreshold) return huge * huge;
    if (x < uThreshold) return twom1000 * twom1000;
  }
  if (hx > 0x3fd62e42) {
    if (hx < 0x3FF0A2B2) {
      if (x == 1.0) return E;
      hi = x - ln2HI[xsb];
      lo = ln2LO[xsb];
      k = 1 - xsb - xsb;
    } else {
      k = static_cast<int32_t>(invln2 * x + halF[xsb]);
      const double t = k;
      hi = x - t * ln2HI[0];
      lo = t * ln2LO[0];
    }
    x = hi - lo;
  } else if (hx < 0x3e300000) {
    if (huge + x > one) return one + x;
  } else {
    k = 0;
  }
  const double t = x * x;
  const uint64_t scaleBits = static_cast<uint64_t>(static_cast<uint32_t>(0x3ff00000 + ((k >= -1021 ? k : k + 1000) * (1 << 20)))) << 32;
  double twopk;
  std::memcpy(&twopk, &scaleBits, 8);
  const double c = x - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
  if (k == 0) return one - ((x * c) / (c - 2.0) - x);
  const double y = one - ((lo - (x * c) / (2.0 - c)) - hi);
  if (k >= -1021) {
    if (k == 1024) return y * 2.0 * two1023;
    return y * twopk;
  }
  return y * twopk * twom1000;
}

#if defined(__x86_64__)
/**
 * fdlibmExp on 8 lanes at a time, for 2^-28 <= |x| < 704 (and x != 1): the same operations in the
 * same order, each rounded (no FMA contraction), with the branches as blends; other lanes (0,
 * -Infinity, underflow, ...) go through fdlibmExp.
 */
FRUGAL_TARGET("avx512f,avx512dq") __attribute__((optimize("fp-contract=off"))) void expShiftedAvx512(double* out, const float* z, int64_t n,
                                                                                                   double shift, double scale) {
  const __m512d vShift = _mm512_set1_pd(shift), vScale = _mm512_set1_pd(scale), one = _mm512_set1_pd(1.0), two = _mm512_set1_pd(2.0);
  const __m512d ln2HI = _mm512_set1_pd(6.93147180369123816490e-01), ln2LO = _mm512_set1_pd(1.90821492927058770002e-10);
  const __m512d invln2 = _mm512_set1_pd(1.44269504088896338700e+00);
  const __m512d P1 = _mm512_set1_pd(1.66666666666666019037e-01), P2 = _mm512_set1_pd(-2.77777777770155933842e-03),
                P3 = _mm512_set1_pd(6.61375632143793436117e-05), P4 = _mm512_set1_pd(-1.65339022054652515390e-06),
                P5 = _mm512_set1_pd(4.13813679705723846039e-08);
  const __m512i absHigh = _mm512_set1_epi64(0x7fffffff);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m512d x = _mm512_mul_pd(_mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(z + i)), vShift), vScale);
    const __m512i hx = _mm512_and_si512(_mm512_srli_epi64(_mm512_castpd_si512(x), 32), absHigh);
    const __mmask8 inRange = _mm512_cmpge_epi64_mask(hx, _mm512_set1_epi64(0x3e300000)) & _mm512_cmplt_epi64_mask(hx, _mm512_set1_epi64(0x40860000)) &
                             _mm512_cmp_pd_mask(x, one, _CMP_NEQ_UQ);
    const __mmask8 negative = _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_LT_OQ);
    const __mmask8 reduced = _mm512_cmpgt_epi64_mask(hx, _mm512_set1_epi64(0x3fd62e42));
    const __mmask8 middle = reduced & _mm512_cmplt_epi64_mask(hx, _mm512_set1_epi64(0x3FF0A2B2));
    // k: 0 when |x| <= ln2/2, ±1 when |x| < 1.5 ln2, else (int)(invln2 x ± 0.5)
    const __m512d half = _mm512_mask_blend_pd(negative, _mm512_set1_pd(0.5), _mm512_set1_pd(-0.5));
    __m512d k = _mm512_roundscale_pd(_mm512_add_pd(_mm512_mul_pd(invln2, x), half), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    k = _mm512_mask_blend_pd(middle, k, _mm512_mask_blend_pd(negative, one, _mm512_set1_pd(-1.0)));
    k = _mm512_mask_blend_pd(reduced, _mm512_setzero_pd(), k);
    const __m512d hi = _mm512_sub_pd(x, _mm512_mul_pd(k, ln2HI));
    const __m512d lo = _mm512_mul_pd(k, ln2LO);
    const __m512d r = _mm512_mask_blend_pd(reduced, x, _mm512_sub_pd(hi, lo));
    const __m512d t = _mm512_mul_pd(r, r);
    __m512d poly = _mm512_add_pd(P4, _mm512_mul_pd(t, P5));
    poly = _mm512_add_pd(P3, _mm512_mul_pd(t, poly));
    poly = _mm512_add_pd(P2, _mm512_mul_pd(t, poly));
    poly = _mm512_add_pd(P1, _mm512_mul_pd(t, poly));
    const __m512d c = _mm512_sub_pd(r, _mm512_mul_pd(t, poly));
    const __m512d rc = _mm512_mul_pd(r, c);
    // k == 0: 1 - ((r c / (c - 2)) - r); else (1 - ((lo - r c / (2 - c)) - hi)) 2^k
    const __m512d small = _mm512_sub_pd(one, _mm512_sub_pd(_mm512_div_pd(rc, _mm512_sub_pd(c, two)), r));
    const __m512d y = _mm512_sub_pd(one, _mm512_sub_pd(_mm512_sub_pd(lo, _mm512_div_pd(rc, _mm512_sub_pd(two, c))), hi));
    const __m512d twopk = _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_add_epi64(_mm512_cvtpd_epi64(k), _mm512_set1_epi64(1023)), 52));
    const __mmask8 zeroK = _mm512_cmp_pd_mask(k, _mm512_setzero_pd(), _CMP_EQ_OQ);
    _mm512_storeu_pd(out + i, _mm512_mask_blend_pd(zeroK, _mm512_mul_pd(y, twopk), small));
    const unsigned others = static_cast<unsigned>(static_cast<__mmask8>(~inRange));
    if (others != 0) {
      alignas(64) double xs[8];
      _mm512_store_pd(xs, x);
      for (int j = 0; j < 8; j++) {
        if (others & (1u << j)) out[i + j] = fdlibmExp(xs[j]);
      }
    }
  }
  for (; i < n; i++) out[i] = fdlibmExp((static_cast<double>(z[i]) - shift) * scale);
}

/**
 * expShiftedAvx512 on 4 lanes of AVX2 (no 64-bit compare-to-mask or double-to-int64 conversion
 * there: compares give lane masks for blends, and 2^k comes from k + 1023 placed in the low
 * mantissa bits by adding 1.5 · 2^52). Same operations in the same order, no FMA contraction.
 */
FRUGAL_TARGET("avx2") __attribute__((optimize("fp-contract=off"))) void expShiftedAvx2(double* out, const float* z, int64_t n, double shift,
                                                                                 double scale) {
  const __m256d vShift = _mm256_set1_pd(shift), vScale = _mm256_set1_pd(scale), one = _mm256_set1_pd(1.0), two = _mm256_set1_pd(2.0);
  const __m256d zero = _mm256_setzero_pd(), minusOne = _mm256_set1_pd(-1.0);
  const __m256d ln2HI = _mm256_set1_pd(6.93147180369123816490e-01), ln2LO = _mm256_set1_pd(1.90821492927058770002e-10);
  const __m256d invln2 = _mm256_set1_pd(1.44269504088896338700e+00);
  const __m256d P1 = _mm256_set1_pd(1.66666666666666019037e-01), P2 = _mm256_set1_pd(-2.77777777770155933842e-03),
                P3 = _mm256_set1_pd(6.61375632143793436117e-05), P4 = _mm256_set1_pd(-1.65339022054652515390e-06),
                P5 = _mm256_set1_pd(4.13813679705723846039e-08);
  const __m256d bias = _mm256_set1_pd(1023.0 + 6755399441055744.0);  // + 1.5 · 2^52: the integer lands in the low mantissa bits
  const __m256i absHigh = _mm256_set1_epi64x(0x7fffffff);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256d x = _mm256_mul_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(z + i)), vShift), vScale);
    const __m256i hx = _mm256_and_si256(_mm256_srli_epi64(_mm256_castpd_si256(x), 32), absHigh);
    const __m256i inRange = _mm256_and_si256(
        _mm256_and_si256(_mm256_cmpgt_epi64(hx, _mm256_set1_epi64x(0x3e300000 - 1)), _mm256_cmpgt_epi64(_mm256_set1_epi64x(0x40860000), hx)),
        _mm256_castpd_si256(_mm256_cmp_pd(x, one, _CMP_NEQ_UQ)));
    const __m256d negative = _mm256_cmp_pd(x, zero, _CMP_LT_OQ);
    const __m256d reduced = _mm256_castsi256_pd(_mm256_cmpgt_epi64(hx, _mm256_set1_epi64x(0x3fd62e42)));
    const __m256d middle = _mm256_and_pd(reduced, _mm256_castsi256_pd(_mm256_cmpgt_epi64(_mm256_set1_epi64x(0x3FF0A2B2), hx)));
    // k: 0 when |x| <= ln2/2, ±1 when |x| < 1.5 ln2, else (int)(invln2 x ± 0.5)
    const __m256d half = _mm256_blendv_pd(_mm256_set1_pd(0.5), _mm256_set1_pd(-0.5), negative);
    __m256d k = _mm256_round_pd(_mm256_add_pd(_mm256_mul_pd(invln2, x), half), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    k = _mm256_blendv_pd(k, _mm256_blendv_pd(one, minusOne, negative), middle);
    k = _mm256_blendv_pd(zero, k, reduced);
    const __m256d hi = _mm256_sub_pd(x, _mm256_mul_pd(k, ln2HI));
    const __m256d lo = _mm256_mul_pd(k, ln2LO);
    const __m256d r = _mm256_blendv_pd(x, _mm256_sub_pd(hi, lo), reduced);
    const __m256d t = _mm256_mul_pd(r, r);
    __m256d poly = _mm256_add_pd(P4, _mm256_mul_pd(t, P5));
    poly = _mm256_add_pd(P3, _mm256_mul_pd(t, poly));
    poly = _mm256_add_pd(P2, _mm256_mul_pd(t, poly));
    poly = _mm256_add_pd(P1, _mm256_mul_pd(t, poly));
    const __m256d c = _mm256_sub_pd(r, _mm256_mul_pd(t, poly));
    const __m256d rc = _mm256_mul_pd(r, c);
    const __m256d small = _mm256_sub_pd(one, _mm256_sub_pd(_mm256_div_pd(rc, _mm256_sub_pd(c, two)), r));
    const __m256d y = _mm256_sub_pd(one, _mm256_sub_pd(_mm256_sub_pd(lo, _mm256_div_pd(rc, _mm256_sub_pd(two, c))), hi));
    const __m256d twopk = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(_mm256_add_pd(k, bias)), 52));
    const __m256d zeroK = _mm256_cmp_pd(k, zero, _CMP_EQ_OQ);
    _mm256_storeu_pd(out + i, _mm256_blendv_pd(_mm256_mul_pd(y, twopk), small, zeroK));
    const int others = ~_mm256_movemask_pd(_mm256_castsi256_pd(inRange)) & 0xf;
    if (others != 0) {
      alignas(32) double xs[4];
      _mm256_store_pd(xs, x);
      for (int j = 0; j < 4; j++) {
        if (others & (1 << j)) out[i + j] = fdlibmExp(xs[j]);
      }
    }
  }
  for (; i < n; i++) out[i] = fdlibmExp((static_cast<double>(z[i]) - shift) * scale);
}
#endif

/**
 * out[i] = exp((z[i] - shift) * scale) for i < n (the sampler's unnormalized softmax weights), at
 * most `lanes` doubles at a time (8, 4 or 1: the kernel table's SIMD level, so that each path can
 * be tested on a CPU that has a wider one) and no more than the CPU has.
 */
void expShifted(double* out, const float* z, int64_t n, double shift, double scale, int lanes) {
#if defined(__x86_64__)
#if defined(FRUGAL_EMULATED_AVX512)
  static const bool avx512 = true;
#else
  static const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
#endif
  if (lanes >= 8 && avx512) return expShiftedAvx512(out, z, n, shift, scale);
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (lanes >= 4 && avx2) return expShiftedAvx2(out, z, n, shift, scale);
#else
  (void)lanes;
#endif
  for (int64_t i = 0; i < n; i++) out[i] = fdlibmExp((static_cast<double>(z[i]) - shift) * scale);
}

/** Entries per prefix sum of expShiftedSum (src/generate/sampling.ts PREFIX_BLOCK). */
constexpr int64_t PREFIX_BLOCK = 64;

/**
 * expShifted, also returning Σ out[i] summed in index order (the bits of a JavaScript loop), and,
 * with `prefix`, the running sum at the end of each block of PREFIX_BLOCK entries (prefix[b] = Σ
 * out[0 .. min(n, 64·(b + 1)))). The exponentials go block by block, so that a block's sequential
 * additions overlap the next block's exponentials instead of running as one long chain afterwards.
 */
double expShiftedSum(double* out, const float* z, int64_t n, double shift, double scale, int lanes, double* prefix) {
  double total = 0.0;
  for (int64_t b0 = 0; b0 < n; b0 += PREFIX_BLOCK) {
    const int64_t len = n - b0 < PREFIX_BLOCK ? n - b0 : PREFIX_BLOCK;
    expShifted(out + b0, z + b0, len, shift, scale, lanes);
    for (int64_t i = 0; i < len; i++) total += out[b0 + i];
    if (prefix) prefix[b0 / PREFIX_BLOCK] = total;
  }
  return total;
}

/**
 * The sampler's top-p buckets in one pass over the vocabulary (src/generate/sampling.ts nucleus):
 * full[i] = exp((z[i] - m) · invT) as expShifted computes it; mass[b] (b < buckets + 1, zeroed
 * here) += full[i] for bucket[i] = b, where b = buckets for z[i] = -inf and otherwise
 * min(buckets - 1, floor((m - z[i]) · invT · scale)) with scale = buckets / ((m - min finite z)
 * · invT) (0 when that span is 0). Returns Σ full[i]. Every sum runs in index order in doubles,
 * with the same operations as the JavaScript fallback, so both give the same bits.
 */
double softmaxBuckets(const float* z, double* full, int64_t n, double m, double invT, int lanes, uint16_t* bucket, double* mass, int64_t buckets) {
  const double total = expShiftedSum(full, z, n, m, invT, lanes, nullptr);
  double minFinite = m;
  for (int64_t i = 0; i < n; i++) {
    const double v = z[i];
    if (v < minFinite && v != -INFINITY) minFinite = v;
  }
  const double span = (m - minFinite) * invT;
  const double scale = span > 0 ? static_cast<double>(buckets) / span : 0.0;
  for (int64_t b = 0; b <= buckets; b++) mass[b] = 0.0;
  const double last = static_cast<double>(buckets - 1);
  for (int64_t i = 0; i < n; i++) {
    const double v = z[i];
    int64_t b;
    if (v == -INFINITY) {
      b = buckets;
    } else {
      const double t = (m - v) * invT * scale;
      b = t >= last ? buckets - 1 : static_cast<int64_t>(t);
    }
    bucket[i] = static_cast<uint16_t>(b);
    mass[b] += full[i];
  }
  return total;
}

/**
 * The sampler's argmax (src/generate/sampling.ts process): the first index of the largest of
 * z[0..n), -1 when none is larger than -infinity, or -2 - i when z[i] is the first NaN.
 */
int64_t argmaxLogits(const float* z, int64_t n) {
  int64_t best = -1;
  float m = -INFINITY;
  for (int64_t i = 0; i < n; i++) {
    const float v = z[i];
    if (v > m) {
      m = v;
      best = i;
    } else if (v != v) {
      return -2 - i;
    }
  }
  return best;
}

}  // namespace
}  // namespace frugal
