// AVX-512 VNNI matrix x (few) vectors with int8 activations (m <= SMALL_M rows of x), included by
// kernels_impl.h when __AVX512F__:
//  - The default kernels (below the Q8K / Q8Pairs structs): Q4_K and Q6_K against x rounded as
//    ggml's q8_K, Q4_0 and Q8_0 (even block counts) against x rounded as ggml's q8_0, one weight row
//    at a time, each block decoded once per 4 rows of x: the same rounding as the prefill kernels
//    (gemm_int8.h) and llama.cpp.
//  - The 'all' mode's kernel for Q4_0 rows with an odd number of blocks: x per 32-column block with
//    an f32 scale, packed by column segment. Error: x is rounded to within amax(block)/254 per value,
//    so |error| <= sum over blocks of amax/254 * sum |w| in that block (on top of f32 rounding).

#include "target.h"

#define FRUGAL_VNNI FRUGAL_TARGET("avx512vnni,avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")

/** Activations in int8: q is packed by segment like the f32 path (m rows of `len` bytes at q + m * c0). */
struct Int8Activations {
  const int8_t* q;
  const float* scale;    // [m][cols / 32]
  const int32_t* minus8; // packed like q, one per 4 values: -8 · (sum of those 4 int8 values); for Q4_0
  int64_t blocksPerRow;
};

FRUGAL_VNNI void quantizeActivations(const float* x, int64_t m, int64_t cols, int64_t segment, int8_t* q, float* scale, int32_t* minus8) {
  const int64_t blocks = cols / 32;
  for (int64_t i = 0; i < m; i++) {
    for (int64_t b = 0; b < blocks; b++) {
      const float* xb = x + i * cols + 32 * b;
      const __m512 lo = _mm512_loadu_ps(xb), hi = _mm512_loadu_ps(xb + 16);
      const __m512 absMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(lo, absMask), _mm512_and_ps(hi, absMask)));
      const float d = amax / 127.0f;
      const __m512 inv = _mm512_set1_ps(d == 0.0f ? 0.0f : 1.0f / d);
      const __m128i qlo = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(lo, inv)));
      const __m128i qhi = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(hi, inv)));
      const int64_t col = 32 * b;
      const int64_t c0 = col / segment * segment;
      const int64_t len = imin(segment, cols - c0);
      int8_t* dst = q + m * c0 + i * len + (col - c0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), qlo);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16), qhi);
      if (minus8) {
        const __m256i both = _mm256_set_m128i(qhi, qlo);
        const __m256i eights = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), both);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(minus8 + (m * c0 + i * len + (col - c0)) / 4), _mm256_sub_epi32(_mm256_setzero_si256(), eights));
      }
      scale[i * blocks + b] = d;
    }
  }
}

/** Q4_0 rows against int8 activations: two blocks (64 weights) per vpdpbusd. Even block counts only. */
template <int G>
FRUGAL_VNNI void dotSegmentQ4_0Vnni(const Weight& w, int64_t r, int64_t c0, int64_t len, const Int8Activations& a, int64_t m, int64_t i0, float* res) {
  const uint8_t* blk = w.data + r * rowBytes(w) + c0 / 32 * 18;
  const int8_t* xq = a.q + m * c0 + i0 * len;
  const int32_t* off = a.minus8 + (m * c0 + i0 * len) / 4;
  const __m512i nibble = _mm512_set1_epi8(15);
  const __m512i pick = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  __m512 acc[G];
  for (int g = 0; g < G; g++) acc[g] = _mm512_setzero_ps();
  const int64_t pairs = len / 64;
  for (int64_t b = 0; b < pairs; b++, blk += 36) {
    const __m256i q = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 20)), _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2)));
    // [lo a | lo b | hi a | hi b] -> [lo a | hi a | lo b | hi b]: the element order of the two blocks.
    const __m512i z = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1), nibble);
    const __m512i wq = _mm512_shuffle_i64x2(z, z, 0xD8);
    const __m128 d = _mm_set_ps(0.0f, 0.0f, halfToFloat(read16(blk + 18)), halfToFloat(read16(blk)));
    const int64_t xb = (c0 + 64 * b) / 32;
    for (int g = 0; g < G; g++) {
      const __m512i dots = _mm512_dpbusd_epi32(_mm512_loadu_si512(off + g * len / 4 + 16 * b), wq, _mm512_loadu_si512(xq + g * len + 64 * b));
      const __m128 dx = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(a.scale + (i0 + g) * a.blocksPerRow + xb)));
      const __m512 scale = _mm512_permutexvar_ps(pick, _mm512_castps128_ps512(_mm_mul_ps(d, dx)));
      acc[g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), scale, acc[g]);
    }
  }
  for (int g = 0; g < G; g++) res[g] += _mm512_reduce_add_ps(acc[g]);
}

struct VnniJob {
  float* out;
  const float* x;  // the f32 activations (for a Q4_0 row's odd last block)
  Int8Activations a;
  int64_t m;
  int64_t segment;
  const Weight* w;
};

FRUGAL_VNNI void matvecRowsVnni(void* ctx, int64_t r0, int64_t r1, int) {
  const VnniJob& j = *static_cast<const VnniJob*>(ctx);
  const Weight& w = *j.w;
  float acc[MATVEC_ROWS][SMALL_M];
  float* tmp = scratch(0, 32);
  for (int64_t rb = r0; rb < r1; rb += MATVEC_ROWS) {
    const int64_t nr = imin(MATVEC_ROWS, r1 - rb);
    for (int64_t rr = 0; rr < nr; rr++)
      for (int64_t i = 0; i < j.m; i++) acc[rr][i] = 0.0f;
    for (int64_t c0 = 0; c0 < w.cols; c0 += j.segment) {
      const int64_t len = imin(j.segment, w.cols - c0);
      const int64_t even = len / 64 * 64;
      for (int64_t rr = 0; rr < nr; rr++) {
        for (int64_t i = 0; i < j.m;) {
          const int64_t g = imin(4, j.m - i);
          float* res = acc[rr] + i;
          const int64_t r = rb + rr;
          switch (g) {
            case 4: dotSegmentQ4_0Vnni<4>(w, r, c0, len, j.a, j.m, i, res); break;
            case 3: dotSegmentQ4_0Vnni<3>(w, r, c0, len, j.a, j.m, i, res); break;
            case 2: dotSegmentQ4_0Vnni<2>(w, r, c0, len, j.a, j.m, i, res); break;
            default: dotSegmentQ4_0Vnni<1>(w, r, c0, len, j.a, j.m, i, res); break;
          }
          i += g;
        }
        if (even < len) {  // a segment with an odd number of blocks: the last block in f32
          decodeRow(w, rb + rr, c0 + even, len - even, tmp);
          for (int64_t i = 0; i < j.m; i++) acc[rr][i] += dot(tmp, j.x + i * w.cols + c0 + even, len - even);
        }
      }
    }
    for (int64_t rr = 0; rr < nr; rr++)
      for (int64_t i = 0; i < j.m; i++) j.out[i * w.rows + rb + rr] = acc[rr][i];
  }
}

/** Q4_0 weights with an odd number of blocks x (m <= SMALL_M) rows with int8 activations ('all' mode). */
void matvecVnni(float* out, const float* x, int64_t m, const Weight& w) {
  const int64_t segment = SEGMENT;
  const int64_t blocks = w.cols / 32;
  int8_t* q = reinterpret_cast<int8_t*>(scratch(3, static_cast<size_t>((m * w.cols + 3) / 4 + m * w.cols / 4)));
  int32_t* minus8 = reinterpret_cast<int32_t*>(q + (m * w.cols + 3) / 4 * 4);
  float* scale = scratch(1, static_cast<size_t>(m * blocks));
  quantizeActivations(x, m, w.cols, segment, q, scale, minus8);
  VnniJob j{out, x, Int8Activations{q, scale, minus8, blocks}, m, segment, &w};
  parallelStatic(w.rows, matvecGrain(w, m), matvecRowsVnni, &j);
}

// ---------------------------------------------------------------------------------------------
// ggml's rounding of activations to int8, shared by the decode kernels below and the prefill
// kernels (gemm_int8.h, roundRows): per block of n values (32 for q8_0, 256 for q8_K),
// d = amax / 127, kept in f16 for q8_0 (round to nearest even; f32 where f16 would overflow) and in
// f32 for q8_K, and q = x · 127 / amax to nearest, ties to even (saturated to int8 when stored).
// Matching it bit for bit is what makes our logits agree with llama.cpp's.

/** The scale d of the n values at x (a multiple of 16) and the factor `inv` that rounds them (0 for an all-zero block). */
FRUGAL_VNNI inline float q8Scale(const float* x, int64_t n, bool f16Scale, __m512& inv) {
  const __m512 absMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  __m512 mx = _mm512_setzero_ps();
  for (int64_t c = 0; c < n; c += 16) mx = _mm512_max_ps(mx, _mm512_and_ps(_mm512_loadu_ps(x + c), absMask));
  const float amax = _mm512_reduce_max_ps(mx);
  const float d = amax / 127.0f;
  inv = _mm512_set1_ps(amax == 0.0f ? 0.0f : 127.0f / amax);
  return f16Scale && d <= 65504.0f ? _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT)) : d;
}

/** 16 values at x rounded with q8Scale's inv, as int32 lanes. */
FRUGAL_VNNI inline __m512i q8Round(const float* x, __m512 inv) { return _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x), inv)); }

/**
 * ggml's q8_1 block sum for the 32 values at x whose int8 values add up to `sum`: s = f16(d · sum)
 * with d = amax / 127 in f32 (not f16-rounded), as quantize_row_q8_1 stores it. Q5_1's minimums
 * meet x through s; its f16 rounding matters (the min term largely cancels the codes' term), so we
 * match it: with d · sum in f32 instead, a tiny model's log-probabilities differed from llama.cpp's
 * by 0.32 nats, with s as here by 5e-5.
 */
FRUGAL_VNNI inline float q8_1Sum(const float* x, int32_t sum) {
  __m512 unused;
  const float d = q8Scale(x, 32, false, unused);
  return _cvtsh_ss(_cvtss_sh(d * static_cast<float>(sum), _MM_FROUND_TO_NEAREST_INT));
}

// ---------------------------------------------------------------------------------------------
// Q4_K decode (m <= SMALL_M) with x rounded as ggml's q8_K: one f32 scale per 256 values, the int8
// values of each 256 stored with their 32-value sub-blocks in the order 0 2 1 3 4 6 5 7, so that
// the low nibbles of 64 weight bytes (sub-blocks 2c and 2c + 2) and their high nibbles (2c + 1,
// 2c + 3) each meet their activations in one 64-byte load. Per block and row: vpmaddubsw
// (nibble x int8 pairs), vpdpwssd against the sub-block scales as int16 words (the sums stay exact
// integers), then one f32 multiply-add by d · d_x, and the minimums as dmin · d_x · Σ mn · bsum.

struct Q8K {
  const int8_t* q;       // [m][cols]; for Q4_K with sub-blocks reordered as above
  const float* d;        // [m][cols / 256]
  const int16_t* bsums;  // Q4_K: [m][cols / 32]; Q6_K: [m][cols / 16]; natural order
};

/**
 * Rows of x ([m][cols], cols a multiple of 256) rounded as ggml's q8_K, laid out for a Q4_K
 * (reordered, sums of 32) or a Q6_K (natural, sums of 16) kernel.
 */
FRUGAL_VNNI void quantizeQ8K(const float* x, int64_t m, int64_t cols, int dtype, int8_t* q, float* d, int16_t* bsums) {
  static constexpr int POSITION[4] = {0, 2, 1, 3};
  const bool q4k = dtype == DT_Q4_K, iq4xs = dtype == DT_IQ4_XS, low = dtype == DT_Q2_K || dtype == DT_Q3_K;
  for (int64_t i = 0; i < m * cols / 256; i++) {
    const float* xs = x + i * 256;
    __m512 inv;
    d[i] = q8Scale(xs, 256, false, inv);
    for (int j = 0; j < 8; j++) {
      const __m512i lo = q8Round(xs + 32 * j, inv), hi = q8Round(xs + 32 * j + 16, inv);
      // IQ4_XS: the first and second 16 values of sub-block j go to lane j % 4 of the low- and
      // high-nibble loads of code half j / 4; Q2_K / Q3_K: values 32j.. and 128 + 32j.. side by
      // side (the bit pair j of qs[0..63]); see kLowRowInt8.
      int8_t* dst = q + i * 256 + (q4k ? 128 * (j / 4) + 32 * POSITION[j % 4] : iq4xs ? 128 * (j / 4) + 16 * (j % 4) : low ? 64 * (j % 4) + 32 * (j / 4) : 32 * j);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm512_cvtsepi32_epi8(lo));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (iq4xs ? 64 : 16)), _mm512_cvtsepi32_epi8(hi));
      if (q4k) {
        bsums[i * 8 + j] = static_cast<int16_t>(_mm512_reduce_add_epi32(_mm512_add_epi32(lo, hi)));
      } else {
        bsums[i * 16 + 2 * j] = static_cast<int16_t>(_mm512_reduce_add_epi32(lo));
        bsums[i * 16 + 2 * j + 1] = static_cast<int16_t>(_mm512_reduce_add_epi32(hi));
      }
    }
  }
}

/** Word k of the result is scale byte `pick` of each 128-bit lane's first (lanes 0, 1) or second (lanes 2, 3) choice. */
inline __m512i scaleWordIndex(int first, int second) {
  const int8_t z = -128;
  const int8_t a = static_cast<int8_t>(first), b = static_cast<int8_t>(second);
  return _mm512_set_epi8(z, b, z, b, z, b, z, b, z, b, z, b, z, b, z, b, z, b, z, b, z, b, z, b, z, b, z, b, z, b, z, b,
                         z, a, z, a, z, a, z, a, z, a, z, a, z, a, z, a, z, a, z, a, z, a, z, a, z, a, z, a, z, a, z, a);
}

/** kScaleBytes in one register: the 12 bytes at s (4 bytes past them are read and ignored) as sc[0..7], mn[0..7]. */
FRUGAL_VNNI inline __m128i kScaleBytesVector(const uint8_t* s) {
  const __m128i u = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));  // dwords u0 u1 u2 (u3 unused)
  // Low parts: u0 & 0x3f, u2 & 0x0f, u1 & 0x3f, (u2 >> 4) & 0x0f per byte.
  const __m128i low = _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(u, _MM_SHUFFLE(2, 1, 2, 0)), _mm_setr_epi32(0, 0, 0, 4)),
                                    _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  // High 2 bits of scales 4..7 (from the top bits of u0's bytes) and of mins 4..7 (u1's), moved to bits 4..5.
  const __m128i high = _mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(u, _MM_SHUFFLE(1, 1, 0, 0)), 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
  return _mm_or_si128(low, high);
}

/**
 * Q4_K row r against G <= 4 q8_K activation rows: out[g * ldo + r]. One row at a time: a single
 * row stream read 25.6 GB/s from DRAM on one core against 15.7 with 4 rows side by side (the
 * same speed when the matrix is in cache).
 */
template <int G>
FRUGAL_VNNI void q4kRowInt8(const Weight& w, int64_t r, const Q8K& x, float* out, int64_t ldo) {
  const int64_t blocks = w.cols / 256;
  const uint8_t* row = w.data + r * rowBytes(w);
  const __m512i nibble = _mm512_set1_epi8(15);
  const __m512i pick[4] = {scaleWordIndex(0, 2), scaleWordIndex(1, 3), scaleWordIndex(4, 6), scaleWordIndex(5, 7)};
  __m512 acc[G];
  __m128 minAcc[G];
  for (int g = 0; g < G; g++) {
    acc[g] = _mm512_setzero_ps();
    minAcc[g] = _mm_setzero_ps();
  }
  for (int64_t b = 0; b < blocks; b++) {
    const uint8_t* blk = row + b * 144;
    const __m128i smv = kScaleBytesVector(blk + 4);
    const __m512i scaleBytes = _mm512_broadcast_i32x4(smv);
    const __m128i mins = _mm_cvtepu8_epi16(_mm_srli_si128(smv, 8));
    const __m128 dBoth = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(read32(blk))));  // d, dmin
    const __m512i q0 = _mm512_loadu_si512(blk + 16), q1 = _mm512_loadu_si512(blk + 80);
    const __m512i codes[4] = {_mm512_and_si512(q0, nibble), _mm512_and_si512(_mm512_srli_epi16(q0, 4), nibble),
                              _mm512_and_si512(q1, nibble), _mm512_and_si512(_mm512_srli_epi16(q1, 4), nibble)};
    __m512i scales[4];
    for (int k = 0; k < 4; k++) scales[k] = _mm512_shuffle_epi8(scaleBytes, pick[k]);
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
      const int8_t* xq = x.q + g * w.cols + 256 * b;
      __m512i sum = _mm512_setzero_si512();
      for (int k = 0; k < 4; k++) sum = _mm512_dpwssd_epi32(sum, _mm512_maddubs_epi16(codes[k], _mm512_loadu_si512(xq + 64 * k)), scales[k]);
      const __m128i bsums = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.bsums + g * (w.cols / 32) + 8 * b));
      const __m128 factors = _mm_mul_ps(dBoth, _mm_set1_ps(x.d[g * blocks + b]));  // d · d_x, dmin · d_x
      acc[g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_broadcastss_ps(factors), acc[g]);
      minAcc[g] = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_madd_epi16(mins, bsums)), _mm_permute_ps(factors, 0x55), minAcc[g]);
    }
  }
  for (int g = 0; g < G; g++) out[g * ldo + r] = _mm512_reduce_add_ps(acc[g]) - _mm512_reduce_add_ps(_mm512_zextps128_ps512(minAcc[g]));
}

/**
 * Q6_K row r against G <= 4 q8_K activation rows (natural order, sums of 16). Per half block of
 * 128: ql's 64 bytes hold the low 4 bits of elements 0..63 (low nibbles) and 64..127 (high), qh's
 * 32 bytes their top 2 bits (bit pairs 0, 1, 2, 3 for elements l, l + 32, l + 64, l + 96). The
 * 6-bit codes 0..63 go through vpmaddubsw and vpdpwssd against the int16 scale of each 16 (one
 * 128-bit lane of the pair sums); the "- 32" is -32 · d · d_x · Σ scale · (sum of 16 int8 x).
 */
template <int G>
FRUGAL_VNNI void q6kRowInt8(const Weight& w, int64_t r, const Q8K& x, float* out, int64_t ldo) {
  const int64_t blocks = w.cols / 256;
  const uint8_t* row = w.data + r * rowBytes(w);
  const __m512i low4 = _mm512_set1_epi8(0x0f), low2 = _mm512_set1_epi8(0x03), bits45 = _mm512_set1_epi8(0x30);
  // Scale word index of each 128-bit lane: element groups of 16 in the order the codes come.
  const __m512i pick[4] = {_mm512_set_epi64(0x0003000300030003, 0x0003000300030003, 0x0002000200020002, 0x0002000200020002, 0x0001000100010001, 0x0001000100010001, 0, 0),
                           _mm512_set_epi64(0x0007000700070007, 0x0007000700070007, 0x0006000600060006, 0x0006000600060006, 0x0005000500050005, 0x0005000500050005, 0x0004000400040004, 0x0004000400040004),
                           _mm512_set_epi64(0x000b000b000b000b, 0x000b000b000b000b, 0x000a000a000a000a, 0x000a000a000a000a, 0x0009000900090009, 0x0009000900090009, 0x0008000800080008, 0x0008000800080008),
                           _mm512_set_epi64(0x000f000f000f000f, 0x000f000f000f000f, 0x000e000e000e000e, 0x000e000e000e000e, 0x000d000d000d000d, 0x000d000d000d000d, 0x000c000c000c000c, 0x000c000c000c000c)};
  __m512 acc[G];
  __m256 offAcc[G];
  for (int g = 0; g < G; g++) {
    acc[g] = _mm512_setzero_ps();
    offAcc[g] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < blocks; b++) {
    const uint8_t* blk = row + b * 210;
    const __m256i scale16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 192)));
    const __m512i scaleWords = _mm512_castsi256_si512(scale16);
    __m512i codes[4], scales[4];
    for (int h = 0; h < 2; h++) {
      const __m512i ql = _mm512_loadu_si512(blk + 64 * h);
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h));
      const __m512i qa = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);  // bits 0-1: elements 0..63; bits 4-5: 64..127
      // (a & b) | c with c holding only bits 4-5: vpternlog 0xEA.
      codes[2 * h] = _mm512_ternarylogic_epi32(ql, low4, _mm512_slli_epi16(_mm512_and_si512(qa, low2), 4), 0xEA);
      codes[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4), low4, _mm512_and_si512(qa, bits45), 0xEA);
    }
    for (int k = 0; k < 4; k++) scales[k] = _mm512_permutexvar_epi16(pick[k], scaleWords);
    const float dw = halfToFloat(read16(blk + 208));
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
      const int8_t* xq = x.q + g * w.cols + 256 * b;
      __m512i sum = _mm512_setzero_si512();
      for (int k = 0; k < 4; k++) sum = _mm512_dpwssd_epi32(sum, _mm512_maddubs_epi16(codes[k], _mm512_loadu_si512(xq + 64 * k)), scales[k]);
      const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.bsums + g * (w.cols / 16) + 16 * b));
      const float f = dw * x.d[g * blocks + b];
      acc[g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(f), acc[g]);
      offAcc[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(scale16, bsums)), _mm256_set1_ps(-32.0f * f), offAcc[g]);
    }
  }
  for (int g = 0; g < G; g++) out[g * ldo + r] = _mm512_reduce_add_ps(acc[g]) + _mm512_reduce_add_ps(_mm512_zextps256_ps512(offAcc[g]));
}

/** Word index vector: every word of 128-bit lane L is word (l0, l1, l2, l3)[L] (a scale per 16 codes). */
FRUGAL_VNNI inline __m512i laneWords(int l0, int l1, int l2, int l3) {
  const long long k = 0x0001000100010001LL;
  return _mm512_set_epi64(k * l3, k * l3, k * l2, k * l2, k * l1, k * l1, k * l0, k * l0);
}

/** As laneWords, for a byte shuffle: each word is that byte of its lane, zero-extended. */
FRUGAL_VNNI inline __m512i laneByteWords(__m512i words) { return _mm512_or_si512(words, _mm512_set1_epi16(static_cast<short>(0x8000))); }

/**
 * Q2_K, Q3_K and IQ4_XS row r against G <= 4 q8_K activation rows: out[g * ldo + r]. Per block,
 * the 256 codes as 4 x 64 unsigned bytes (codes[k] meets x's bytes 64k..64k+63), each 128-bit
 * lane of 16 codes with its own int16 scale (vpmaddubsw then vpdpwssd, exact integers), scaled
 * once by d · d_x; then the offset term Σ off16 · bsum16 (sums of 16 int8 x) times dOff · d_x.
 *  - Q2_K: codes (qs >> 2j) & 3 in column order (x natural), scales & 15; offset: the mins
 *    (scales >> 4), dOff = -dmin.
 *  - Q3_K: codes c = low 2 bits | 4 · hmask bit (0..7, standing for c - 4), 6-bit scales - 32;
 *    offset: the scales, dOff = -4 · d.
 *  - IQ4_XS: |codebook value| (0..127), its sign moved onto x (x negated where the value is
 *    negative), sub-block scales ls - 32; x stored per block as the 4 low-nibble lanes of
 *    sub-blocks 0..3, their high-nibble lanes, then the same for 4..7 (quantizeQ8K); no offset.
 */
template <int DT, int G>
FRUGAL_VNNI void kLowRowInt8(const Weight& w, int64_t r, const Q8K& x, float* out, int64_t ldo) {
  constexpr int64_t B = DT == DT_Q2_K ? 84 : DT == DT_Q3_K ? 110 : 136;
  constexpr bool IQ4 = DT == DT_IQ4_XS;
  const int64_t blocks = w.cols / 256;
  const uint8_t* row = w.data + r * rowBytes(w);
  const __m512i three = _mm512_set1_epi8(3), low4 = _mm512_set1_epi8(15);
  // Q2_K / Q3_K: lane L of codes[j] holds sub-block 2j, 2j + 1, 8 + 2j, 9 + 2j; IQ4_XS (pick[0], pick[1]): 4h + L.
  const __m512i pick[4] = {IQ4 ? laneWords(0, 1, 2, 3) : laneWords(0, 1, 8, 9), IQ4 ? laneWords(4, 5, 6, 7) : laneWords(2, 3, 10, 11),
                           laneWords(4, 5, 12, 13), laneWords(6, 7, 14, 15)};
  const __m512i pickBytes[4] = {laneByteWords(pick[0]), laneByteWords(pick[1]), laneByteWords(pick[2]), laneByteWords(pick[3])};
  const __m512i absTable = _mm512_set_epi8(113, 89, 69, 53, 38, 25, 13, 1, 10, 22, 35, 49, 65, 83, 104, 127, 113, 89, 69, 53, 38, 25, 13, 1, 10, 22, 35, 49, 65, 83, 104, 127,
                                           113, 89, 69, 53, 38, 25, 13, 1, 10, 22, 35, 49, 65, 83, 104, 127, 113, 89, 69, 53, 38, 25, 13, 1, 10, 22, 35, 49, 65, 83, 104, 127);
  __m512 acc[G];
  __m256 offAcc[G];
  for (int g = 0; g < G; g++) {
    acc[g] = _mm512_setzero_ps();
    offAcc[g] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < blocks; b++) {
    const uint8_t* blk = row + b * B;
    __m512i codes[4], scales[4];
    __mmask64 neg[4] = {0, 0, 0, 0};
    __m256i off16 = _mm256_setzero_si256();
    float dMain, dOff = 0.0f;
    if constexpr (DT == DT_Q2_K) {
      const __m512i q = _mm512_loadu_si512(blk + 16);
      codes[0] = _mm512_and_si512(q, three);
      for (int j = 1; j < 4; j++) codes[j] = _mm512_and_si512(_mm512_srli_epi16(q, 2 * j), three);
      const __m128i sb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk));
      const __m512i sc = _mm512_broadcast_i32x4(_mm_and_si128(sb, _mm_set1_epi8(15)));
      for (int k = 0; k < 4; k++) scales[k] = _mm512_shuffle_epi8(sc, pickBytes[k]);
      off16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sb, 4), _mm_set1_epi8(15)));
      const __m128 dd = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(read32(blk + 80))));
      dMain = _mm_cvtss_f32(dd);
      dOff = -_mm_cvtss_f32(_mm_movehdup_ps(dd));
    } else if constexpr (DT == DT_Q3_K) {
      const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk));
      const __m512i h2 = _mm512_inserti64x4(_mm512_castsi256_si512(hm), _mm256_srli_epi16(hm, 4), 1);  // hmask bit j of codes[j], low | high half
      const __m512i hb[4] = {_mm512_slli_epi16(h2, 2), _mm512_slli_epi16(h2, 1), h2, _mm512_srli_epi16(h2, 1)};  // at bit 2
      const __m512i q = _mm512_loadu_si512(blk + 32);
      for (int j = 0; j < 4; j++) {
        // bits 0-1 from qs >> 2j, the others from hb (bit 2 the hmask bit), then & 7
        const __m512i mixed = _mm512_ternarylogic_epi32(_mm512_set1_epi8(3), j == 0 ? q : _mm512_srli_epi16(q, 2 * j), hb[j], 0xCA);
        codes[j] = _mm512_and_si512(mixed, _mm512_set1_epi8(7));
      }
      // The 16 6-bit scales: low 4 bits from the nibbles of bytes 0..7 (low nibbles first), high 2
      // bits of scale j from bits 2 (j / 4) of byte 8 + j % 4.
      const __m128i l8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 96)), n4 = _mm_set1_epi8(15);
      const __m128i lowBits = _mm_unpacklo_epi64(_mm_and_si128(l8, n4), _mm_and_si128(_mm_srli_epi16(l8, 4), n4));
      const __m128i t = _mm_set1_epi32(static_cast<int>(read32(blk + 104)));
      const __m128i highBits = _mm_and_si128(_mm_slli_epi32(_mm_srlv_epi32(t, _mm_setr_epi32(0, 2, 4, 6)), 4), _mm_set1_epi8(0x30));
      const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_sub_epi8(_mm_or_si128(lowBits, highBits), _mm_set1_epi8(32)));
      const __m512i words = _mm512_castsi256_si512(sc16);
      for (int k = 0; k < 4; k++) scales[k] = _mm512_permutexvar_epi16(pick[k], words);
      // The "- 4" shares d · d_x with the codes: -4 · scale against the sums of 16 in the same integer sum.
      off16 = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(sc16, 2));
      dMain = halfToFloat(read16(blk + 108));
    } else {
      const uint64_t ls = _pdep_u64(read32(blk + 4), 0x0f0f0f0f0f0f0f0fULL) | _pdep_u64(read16(blk + 2), 0x3030303030303030ULL);
      const __m512i words = _mm512_castsi128_si512(_mm_cvtepi8_epi16(_mm_sub_epi8(_mm_cvtsi64_si128(static_cast<long long>(ls)), _mm_set1_epi8(32))));
      for (int h = 0; h < 2; h++) {
        const __m512i q = _mm512_loadu_si512(blk + 8 + 64 * h);
        const __m512i nib[2] = {_mm512_and_si512(q, low4), _mm512_and_si512(_mm512_srli_epi16(q, 4), low4)};
        scales[2 * h] = scales[2 * h + 1] = _mm512_permutexvar_epi16(pick[h], words);
        for (int u = 0; u < 2; u++) {
          codes[2 * h + u] = _mm512_shuffle_epi8(absTable, nib[u]);
          neg[2 * h + u] = _mm512_testn_epi8_mask(nib[u], _mm512_set1_epi8(8));  // codes 0..7: negative values
        }
      }
      dMain = halfToFloat(read16(blk));
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
      const int8_t* xq = x.q + g * w.cols + 256 * b;
      __m512i sum = _mm512_setzero_si512();
      for (int k = 0; k < 4; k++) {
        __m512i xk = _mm512_loadu_si512(xq + 64 * k);
        if constexpr (IQ4) xk = _mm512_mask_sub_epi8(xk, neg[k], _mm512_setzero_si512(), xk);
        sum = _mm512_dpwssd_epi32(sum, _mm512_maddubs_epi16(codes[k], xk), scales[k]);
      }
      if constexpr (DT == DT_Q3_K)
        sum = _mm512_dpwssd_epi32(sum, _mm512_zextsi256_si512(off16), _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.bsums + g * (w.cols / 16) + 16 * b))));
      const float dx = x.d[g * blocks + b];
      acc[g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(dMain * dx), acc[g]);
      if constexpr (DT == DT_Q2_K) {
        const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.bsums + g * (w.cols / 16) + 16 * b));
        offAcc[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(off16, bsums)), _mm256_set1_ps(dOff * dx), offAcc[g]);
      }
    }
  }
  for (int g = 0; g < G; g++) out[g * ldo + r] = _mm512_reduce_add_ps(acc[g]) + _mm512_reduce_add_ps(_mm512_zextps256_ps512(offAcc[g]));
}

struct KInt8Job {
  float* out;
  Q8K x;
  int64_t m;
  const Weight* w;
};

/** The activation rows from g0 on (for the groups of 4 that m > 4 is taken in). */
inline Q8K rowsFrom(const Q8K& x, int64_t g0, int64_t cols, int dtype) {
  return Q8K{x.q + g0 * cols, x.d + g0 * (cols / 256), x.bsums + g0 * (cols / (dtype == DT_Q4_K ? 32 : 16))};
}

template <int DT, int G>
FRUGAL_VNNI inline void kRowInt8(const Weight& w, int64_t r, const Q8K& x, float* out, int64_t ldo) {
  if constexpr (DT == DT_Q4_K) q4kRowInt8<G>(w, r, x, out, ldo);
  else if constexpr (DT == DT_Q6_K) q6kRowInt8<G>(w, r, x, out, ldo);
  else kLowRowInt8<DT, G>(w, r, x, out, ldo);
}

template <int DT>
FRUGAL_VNNI void kInt8Rows(void* ctx, int64_t r0, int64_t r1, int) {
  const KInt8Job& j = *static_cast<const KInt8Job*>(ctx);
  const Weight& w = *j.w;
  for (int64_t r = r0; r < r1; r++) {
    // Up to 4 activation rows per pass over the weight row (it stays in L1 for the next 4).
    for (int64_t g0 = 0; g0 < j.m; g0 += 4) {
      const Q8K x = rowsFrom(j.x, g0, w.cols, w.dtype);
      float* out = j.out + g0 * w.rows;
      switch (imin(4, j.m - g0)) {
        case 1: kRowInt8<DT, 1>(w, r, x, out, w.rows); break;
        case 2: kRowInt8<DT, 2>(w, r, x, out, w.rows); break;
        case 3: kRowInt8<DT, 3>(w, r, x, out, w.rows); break;
        default: kRowInt8<DT, 4>(w, r, x, out, w.rows); break;
      }
    }
  }
}

/** Whether matvecKInt8 takes this dtype. */
inline bool kInt8Type(int dtype) {
  return dtype == DT_Q4_K || dtype == DT_Q6_K || dtype == DT_Q2_K || dtype == DT_Q3_K || dtype == DT_IQ4_XS;
}

/** Q4_K, Q6_K, Q2_K, Q3_K or IQ4_XS weights x m <= SMALL_M rows of x (w.cols a multiple of 256), x rounded as ggml's q8_K. */
void matvecKInt8(float* out, const float* x, int64_t m, const Weight& w) {
  const int64_t cols = w.cols;
  int8_t* q = reinterpret_cast<int8_t*>(scratch(3, static_cast<size_t>(m * cols / 4 + m * cols / 256 + m * cols / 32 + 16)));
  float* d = reinterpret_cast<float*>(q + m * cols);
  int16_t* bsums = reinterpret_cast<int16_t*>(d + m * cols / 256);
  quantizeQ8K(x, m, cols, w.dtype, q, d, bsums);
  KInt8Job j{out, Q8K{q, d, bsums}, m, &w};
  RangeFn fn = w.dtype == DT_Q4_K ? kInt8Rows<DT_Q4_K> : w.dtype == DT_Q6_K ? kInt8Rows<DT_Q6_K> : w.dtype == DT_Q2_K ? kInt8Rows<DT_Q2_K>
             : w.dtype == DT_Q3_K ? kInt8Rows<DT_Q3_K> : kInt8Rows<DT_IQ4_XS>;
  parallelStatic(w.rows, matvecGrain(w, m), fn, &j);
}

// ---------------------------------------------------------------------------------------------
// Q4_0 and Q8_0 decode (m <= SMALL_M) with x rounded as ggml's q8_0 (per 32 values,
// d = amax / 127 in f16), two blocks (64 weights) per vpdpbusd. Q4_0: the blocks'
// 16 code bytes each, low nibbles then high, give [a 0..15 | b 0..15 | a 16..31 | b 16..31], so x is
// stored in that order per pair of blocks; the "- 8" is the dot products' starting value, -8 · the
// sum of each lane's 4 int8 x. Q8_0: the int8 codes + 128 (unsigned for vpdpbusd), x in its own
// order, starting value -128 · the sum of each lane's 4 int8 x.

struct Q8Pairs {
  const int8_t* q;        // [m][cols], for Q4_0, IQ4_NL and Q5_1 pairs of blocks interleaved as above
  const float* d;         // [m][cols / 32], f16-rounded
  const int32_t* offset;  // [m][cols / 4]: -8 (Q4_0) or -128 (Q8_0, IQ4_NL) · sum of each 4 int8 values, in q's order; Q5_1: none
  const float* sums;      // Q5_1: [m][cols / 32], q8_1Sum (ggml's q8_1 s: f16(d · sum of the block's int8 values))
};

/** Whether the pair layout interleaves two blocks' halves (codes from nibbles). */
constexpr bool pairInterleaved(int dtype) { return dtype == DT_Q4_0 || dtype == DT_IQ4_NL || dtype == DT_Q5_1; }

/** Rows of x ([m][cols], cols a multiple of 64) rounded as ggml's q8_0, laid out for pairRowInt8<dtype>. */
FRUGAL_VNNI void quantizeQ8Pairs(const float* x, int64_t m, int64_t cols, int dtype, int8_t* q, float* d, int32_t* offset, float* sums) {
  const bool inter = pairInterleaved(dtype);
  for (int64_t i = 0; i < m * cols / 32; i++) {
    const float* xs = x + i * 32;
    __m512 inv;
    d[i] = q8Scale(xs, 32, true, inv);
    const __m512i lo = q8Round(xs, inv), hi = q8Round(xs + 16, inv);
    const __m128i qlo = _mm512_cvtsepi32_epi8(lo), qhi = _mm512_cvtsepi32_epi8(hi);
    // Interleaved: block a (even i) fills bytes 0..15 and 32..47 of its pair's 64, block b (odd) 16..31 and 48..63.
    int8_t* lowHalf = inter ? q + (i / 2) * 64 + 16 * (i % 2) : q + 32 * i;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(lowHalf), qlo);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(lowHalf + (inter ? 32 : 16)), qhi);
    if (sums) sums[i] = q8_1Sum(xs, _mm512_reduce_add_epi32(_mm512_add_epi32(lo, hi)));
  }
  if (!offset) return;
  const __m512i factor = _mm512_set1_epi8(static_cast<char>(dtype == DT_Q4_0 ? 8 : 128));
  for (int64_t p = 0; p < m * cols / 64; p++) {
    const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), factor, _mm512_loadu_si512(q + 64 * p));
    _mm512_storeu_si512(offset + 16 * p, _mm512_sub_epi32(_mm512_setzero_si512(), s));
  }
}

/**
 * The unsigned codes of the pair of blocks at blk (see Q8Pairs), their two scales d_a, d_b and
 * (Q5_1) their two minimums. IQ4_NL: the codebook value + 128 (offset -128 · Σ x, as Q8_0).
 * Q5_1: the 5-bit codes (the fifth bits of qh: bits 0..15 for a block's low nibbles, 16..31 high).
 */
template <int DTYPE>
FRUGAL_VNNI inline void pairCodes(const uint8_t* blk, __m512i& codes, __m128& d, __m128& mins) {
  if constexpr (DTYPE == DT_Q4_0 || DTYPE == DT_IQ4_NL) {
    const __m256i q = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 20)), _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2)));
    codes = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1), _mm512_set1_epi8(15));
    if constexpr (DTYPE == DT_IQ4_NL) {
      const __m512i table = _mm512_broadcast_i32x4(_mm_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, (char)129, (char)141, (char)153, (char)166, (char)181, (char)197, (char)217, (char)241));
      codes = _mm512_shuffle_epi8(table, codes);
    }
    d = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(read16(blk) | (static_cast<uint32_t>(read16(blk + 18)) << 16))));
  } else if constexpr (DTYPE == DT_Q5_1) {
    const __m256i q = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 32)), _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 8)));
    codes = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1), _mm512_set1_epi8(15));
    const uint64_t ha = read32(blk + 4), hb = read32(blk + 28);
    const __mmask64 fifth = (ha & 0xffff) | ((hb & 0xffff) << 16) | ((ha >> 16) << 32) | ((hb >> 16) << 48);
    codes = _mm512_mask_add_epi8(codes, fifth, codes, _mm512_set1_epi8(16));
    const __m128 both = _mm_cvtph_ps(_mm_setr_epi32(static_cast<int>(read32(blk)), static_cast<int>(read32(blk + 24)), 0, 0));  // da, ma, db, mb
    d = _mm_shuffle_ps(both, both, _MM_SHUFFLE(3, 3, 2, 0));
    mins = _mm_shuffle_ps(both, _mm_setzero_ps(), _MM_SHUFFLE(0, 0, 3, 1));
  } else {
    const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2))),
                                         _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 36)), 1);
    codes = _mm512_xor_si512(q, _mm512_set1_epi8(static_cast<char>(0x80)));
    d = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(read16(blk) | (static_cast<uint32_t>(read16(blk + 34)) << 16))));
  }
}

/** Q4_0, Q8_0, IQ4_NL or Q5_1 row r (an even number of blocks) against G <= 4 q8_0 activation rows: out[g * ldo + r]. */
template <int DTYPE, int G>
FRUGAL_VNNI void pairRowInt8(const Weight& w, int64_t r, const Q8Pairs& x, float* out, int64_t ldo) {
  constexpr int64_t PAIR_BYTES = DTYPE == DT_Q8_0 ? 68 : DTYPE == DT_Q5_1 ? 48 : 36;
  constexpr bool MINS = DTYPE == DT_Q5_1;
  const int64_t pairs = w.cols / 64, blocksPerRow = w.cols / 32;
  const uint8_t* row = w.data + r * rowBytes(w);
  // Which block of the pair each lane's sums belong to: interleaved lanes 0-3, 8-11 a; Q8_0 lanes 0-7 a.
  const __m512i pick = pairInterleaved(DTYPE) ? _mm512_set_epi32(1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0)
                                              : _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  __m512 acc[G][2];
  __m128 minAcc[G];
  for (int g = 0; g < G; g++) {
    acc[g][0] = acc[g][1] = _mm512_setzero_ps();
    minAcc[g] = _mm_setzero_ps();
  }
  for (int64_t p0 = 0; p0 < pairs; p0 += 2) {
#pragma GCC unroll 2
    for (int u = 0; u < 2; u++) {
      const int64_t p = p0 + u;
      if (u == 1 && p >= pairs) break;
      __m512i codes;
      __m128 dw, mw = _mm_setzero_ps();
      pairCodes<DTYPE>(row + PAIR_BYTES * p, codes, dw, mw);
#pragma GCC unroll 4
      for (int g = 0; g < G; g++) {
        const __m512i start = MINS ? _mm512_setzero_si512() : _mm512_loadu_si512(x.offset + g * (w.cols / 4) + 16 * p);
        const __m512i dots = _mm512_dpbusd_epi32(start, codes, _mm512_loadu_si512(x.q + g * w.cols + 64 * p));
        const __m128 dx = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(x.d + g * blocksPerRow + 2 * p)));
        const __m512 scale = _mm512_permutexvar_ps(pick, _mm512_castps128_ps512(_mm_mul_ps(dw, dx)));
        acc[g][u] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), scale, acc[g][u]);
        if constexpr (MINS) minAcc[g] = _mm_fmadd_ps(mw, _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(x.sums + g * blocksPerRow + 2 * p))), minAcc[g]);
      }
    }
  }
  for (int g = 0; g < G; g++) {
    float result = _mm512_reduce_add_ps(_mm512_add_ps(acc[g][0], acc[g][1]));
    if constexpr (MINS) result += _mm512_reduce_add_ps(_mm512_zextps128_ps512(minAcc[g]));
    out[g * ldo + r] = result;
  }
}

struct PairInt8Job {
  float* out;
  Q8Pairs x;
  int64_t m;
  const Weight* w;
};

template <int DTYPE>
FRUGAL_VNNI void pairInt8Rows(void* ctx, int64_t r0, int64_t r1, int) {
  const PairInt8Job& j = *static_cast<const PairInt8Job*>(ctx);
  const Weight& w = *j.w;
  for (int64_t r = r0; r < r1; r++) {
    for (int64_t g0 = 0; g0 < j.m; g0 += 4) {  // as kInt8Rows
      const Q8Pairs x{j.x.q + g0 * w.cols, j.x.d + g0 * (w.cols / 32), j.x.offset ? j.x.offset + g0 * (w.cols / 4) : nullptr,
                      j.x.sums ? j.x.sums + g0 * (w.cols / 32) : nullptr};
      float* out = j.out + g0 * w.rows;
      switch (imin(4, j.m - g0)) {
        case 1: pairRowInt8<DTYPE, 1>(w, r, x, out, w.rows); break;
        case 2: pairRowInt8<DTYPE, 2>(w, r, x, out, w.rows); break;
        case 3: pairRowInt8<DTYPE, 3>(w, r, x, out, w.rows); break;
        default: pairRowInt8<DTYPE, 4>(w, r, x, out, w.rows); break;
      }
    }
  }
}

/** Whether matvecPairsInt8 takes this dtype (with w.cols a multiple of 64). */
inline bool pairInt8Type(int dtype) { return dtype == DT_Q4_0 || dtype == DT_Q8_0 || dtype == DT_IQ4_NL || dtype == DT_Q5_1; }

/** Q4_0, Q8_0, IQ4_NL or Q5_1 weights (w.cols a multiple of 64) x m <= SMALL_M rows of x, x rounded as ggml's q8_0. */
void matvecPairsInt8(float* out, const float* x, int64_t m, const Weight& w) {
  const int64_t cols = w.cols;
  int8_t* q = reinterpret_cast<int8_t*>(scratch(3, static_cast<size_t>(m * cols / 4 + m * cols / 32 + m * cols / 4 + m * cols / 32 + 16)));
  float* d = reinterpret_cast<float*>(q + m * cols);
  int32_t* offset = reinterpret_cast<int32_t*>(d + m * cols / 32);
  float* sums = reinterpret_cast<float*>(offset + m * cols / 4);
  const bool q51 = w.dtype == DT_Q5_1;
  quantizeQ8Pairs(x, m, cols, w.dtype, q, d, q51 ? nullptr : offset, q51 ? sums : nullptr);
  PairInt8Job j{out, Q8Pairs{q, d, q51 ? nullptr : offset, q51 ? sums : nullptr}, m, &w};
  RangeFn fn = w.dtype == DT_Q4_0 ? pairInt8Rows<DT_Q4_0> : w.dtype == DT_Q8_0 ? pairInt8Rows<DT_Q8_0> : w.dtype == DT_IQ4_NL ? pairInt8Rows<DT_IQ4_NL> : pairInt8Rows<DT_Q5_1>;
  parallelStatic(w.rows, matvecGrain(w, m), fn, &j);
}
