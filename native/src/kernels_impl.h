// The kernels, written once and compiled once per SIMD level: kernels_scalar.cc (baseline
// x86-64 or any CPU), kernels_avx2.cc (-mavx2 -mfma -mf16c) and kernels_avx512.cc (-mavx512*).
// The including file defines FRUGAL_NS. Hand-written intrinsics cover the GEMM microkernel and
// the dot products; the rest is plain loops that the compiler vectorizes for the level's flags.
// Everything below sits in an anonymous namespace so that no code is shared (and possibly
// picked by the linker from the wrong translation unit) between levels.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "kernels.h"

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace frugal {
namespace FRUGAL_NS {
namespace {

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

inline float bitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t read16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

inline uint32_t read32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline float halfToFloat(uint16_t h) {
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  if (exp == 0) {
    float v = static_cast<float>(mant) * 5.9604644775390625e-8f;  // 2^-24
    return sign ? -v : v;
  }
  if (exp == 31) return bitsToFloat(sign | 0x7f800000u | (mant << 13));
  return bitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
#endif
}

/** f32 bits of an E4M3 byte times 2^-120 (the caller multiplies by 2^120 · scale); NaN for 0x7F/0xFF. */
inline uint32_t fp8Bits(uint8_t b) {
  // Sign-extend, shift the 4 exponent + 3 mantissa bits into place (keeping the sign).
  const uint32_t bits = (static_cast<uint32_t>(static_cast<int32_t>(static_cast<int8_t>(b))) << 20) & 0x87F00000u;
  return (b & 0x7f) == 0x7f ? 0x7fc00000u : bits;
}

constexpr float TWO_POW_120 = 1.329227995784916e36f;

void decodeFp8(const uint8_t* __restrict src, int64_t n, float scale, float* __restrict out) {
  const float k = scale * TWO_POW_120;
  for (int64_t i = 0; i < n; i++) out[i] = bitsToFloat(fp8Bits(src[i])) * k;
}

// ---------------------------------------------------------------------------------------------
// Vector helpers

#if defined(__AVX2__)
/** The sum of the 8 lanes of v (halves, then pairs, then the last two). */
inline float hsum8(__m256 v) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}
#endif

float dot(const float* a, const float* b, int64_t n) {
#if defined(__AVX512F__)
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
  }
  for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
  if (i < n) {
    __mmask16 mask = static_cast<__mmask16>((1u << (n - i)) - 1);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, a + i), _mm512_maskz_loadu_ps(mask, b + i), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
#elif defined(__AVX2__)
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float sum = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < n; i++) sum += a[i] * b[i];
  return sum;
#else
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) s[l] += a[i + l] * b[i + l];
  float sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; i++) sum += a[i] * b[i];
  return sum;
#endif
}

inline void axpyLoop(float* y, float alpha, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

// ---------------------------------------------------------------------------------------------
// Weight decoding (exact ggml layouts; see ../shared/spec/formats-and-api.md §1.5)

struct BlockShape {
  int64_t elements;
  int64_t bytes;
};

BlockShape blockShape(int dtype) {
  switch (dtype) {
    case DT_F32: return {1, 4};
    case DT_F16: return {1, 2};
    case DT_BF16: return {1, 2};
    case DT_Q8_0: return {32, 34};
    case DT_Q4_0: return {32, 18};
    case DT_Q4_1: return {32, 20};
    case DT_Q5_0: return {32, 22};
    case DT_Q4_K: return {256, 144};
    case DT_Q5_K: return {256, 176};
    case DT_Q6_K: return {256, 210};
    case DT_IQ4_NL: return {32, 18};
    case DT_IQ4_XS: return {256, 136};
    case DT_Q2_K: return {256, 84};
    case DT_Q3_K: return {256, 110};
    case DT_Q5_1: return {32, 24};
    default: return {1, 1};  // fp8
  }
}

int64_t rowBytes(const Weight& w) {
  BlockShape s = blockShape(w.dtype);
  return w.cols / s.elements * s.bytes;
}

void decodeF16(const uint8_t* __restrict src, int64_t n, float* __restrict out) {
  int64_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
#endif
  for (; i < n; i++) out[i] = halfToFloat(read16(src + 2 * i));
}

void decodeBf16(const uint8_t* __restrict src, int64_t n, float* __restrict out) {
  for (int64_t i = 0; i < n; i++) out[i] = bitsToFloat(static_cast<uint32_t>(read16(src + 2 * i)) << 16);
}

void decodeQ8_0(const uint8_t* __restrict src, int64_t blocks, float* __restrict out) {
  for (int64_t b = 0; b < blocks; b++, src += 34, out += 32) {
    const float d = halfToFloat(read16(src));
    const int8_t* q = reinterpret_cast<const int8_t*>(src + 2);
    for (int j = 0; j < 32; j++) out[j] = d * static_cast<float>(q[j]);
  }
}

void decodeQ4_0(const uint8_t* __restrict src, int64_t blocks, float* __restrict out) {
  for (int64_t b = 0; b < blocks; b++, src += 18, out += 32) {
    const float d = halfToFloat(read16(src));
    const uint8_t* q = src + 2;
    for (int j = 0; j < 16; j++) {
      out[j] = d * static_cast<float>((q[j] & 15) - 8);
      out[j + 16] = d * static_cast<float>((q[j] >> 4) - 8);
    }
  }
}

void decodeQ4_1(const uint8_t* __restrict src, int64_t blocks, float* __restrict out) {
  for (int64_t b = 0; b < blocks; b++, src += 20, out += 32) {
    const float d = halfToFloat(read16(src)), m = halfToFloat(read16(src + 2));
    const uint8_t* q = src + 4;
    for (int j = 0; j < 16; j++) {
      out[j] = d * static_cast<float>(q[j] & 15) + m;
      out[j + 16] = d * static_cast<float>(q[j] >> 4) + m;
    }
  }
}

void decodeQ5_0(const uint8_t* __restrict src, int64_t blocks, float* __restrict out) {
  for (int64_t b = 0; b < blocks; b++, src += 22, out += 32) {
    const float d = halfToFloat(read16(src));
    const uint32_t qh = read32(src + 2);
    const uint8_t* q = src + 6;
    for (int j = 0; j < 16; j++) {
      int lo = (q[j] & 15) | static_cast<int>(((qh >> j) & 1) << 4);
      int hi = (q[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
      out[j] = d * static_cast<float>(lo - 16);
      out[j + 16] = d * static_cast<float>(hi - 16);
    }
  }
}

inline void kScaleMin(int j, const uint8_t* s, int* sc, int* mn) {
  if (j < 4) {
    *sc = s[j] & 63;
    *mn = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

/** The 8 sub-block scales and mins of a Q4_K / Q5_K block (the 12 bytes at s), four 6-bit values per 32-bit word. */
struct KScaleWords {
  uint32_t sc03, sc47, mn03, mn47;
};

inline KScaleWords kScaleWords(const uint8_t* s) {
  uint32_t u0, u1, u2;
  std::memcpy(&u0, s, 4);
  std::memcpy(&u1, s + 4, 4);
  std::memcpy(&u2, s + 8, 4);
  const uint32_t low6 = 0x3f3f3f3fu, low4 = 0x0f0f0f0fu, top2 = 0x03030303u;
  return {u0 & low6, (u2 & low4) | (((u0 >> 6) & top2) << 4), u1 & low6, ((u2 >> 4) & low4) | (((u1 >> 6) & top2) << 4)};
}

/** The 8 sub-block scales and mins of a Q4_K block as bytes: sc[0..7] then mn[0..7]. */
inline void kScaleBytes(const uint8_t* s, uint8_t* out) {
  const KScaleWords k = kScaleWords(s);
  const uint32_t words[4] = {k.sc03, k.sc47, k.mn03, k.mn47};
  std::memcpy(out, words, 16);
}

void decodeQ4_K(const uint8_t* __restrict src, int64_t blocks, float* __restrict out) {
  for (int64_t b = 0; b < blocks; b++, src += 144, out += 256) {
    const float d = halfToFloat(read16(src)), dmin = halfToFloat(read16(src + 2));
    const uint8_t* scales = src + 4;
    for (int c = 0; c < 4; c++) {
      const uint8_t* q = src + 16 + 32 * c;
      int sc1, mn1, sc2, mn2;
      kScaleMin(2 * c, scales, &sc1, &mn1);
      kScaleMin(2 * c + 1, scales, &sc2, &mn2);
      const float d1 = d * sc1, m1 = dmin * mn1, d2 = d * sc2, m2 = dmin * mn2;
      float* y = out + 64 * c;
      for (int l = 0; l < 32; l++) y[l] = d1 * static_cast<float>(q[l] & 15) - m1;
      for (int l = 0; l < 32; l++) y[32 + l] = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void decodeQ5_K(const uint8_t* __restrict src, int64_t blocks, float* __restrict out) {
  for (int64_t b = 0; b < blocks; b++, src += 176, out += 256) {
    const float d = halfToFloat(read16(src)), dmin = halfToFloat(read16(src + 2));
    const uint8_t* scales = src + 4;
    const uint8_t* qh = src + 16;
    for (int c = 0; c < 4; c++) {
      const uint8_t* q = src + 48 + 32 * c;
      int sc1, mn1, sc2, mn2;
      kScaleMin(2 * c, scales, &sc1, &mn1);
      kScaleMin(2 * c + 1, scales, &sc2, &mn2);
      const float d1 = d * sc1, m1 = dmin * mn1, d2 = d * sc2, m2 = dmin * mn2;
      const int bit1 = 2 * c, bit2 = 2 * c + 1;
      float* y = out + 64 * c;
      for (int l = 0; l < 32; l++) y[l] = d1 * static_cast<float>((q[l] & 15) | (((qh[l] >> bit1) & 1) << 4)) - m1;
      for (int l = 0; l < 32; l++) y[32 + l] = d2 * static_cast<float>((q[l] >> 4) | (((qh[l] >> bit2) & 1) << 4)) - m2;
    }
  }
}

void decodeQ6_K(const uint8_t* __restrict src, int64_t blocks, float* __restrict out) {
  for (int64_t b = 0; b < blocks; b++, src += 210, out += 256) {
    const float d = halfToFloat(read16(src + 208));
    for (int h = 0; h < 2; h++) {
      const uint8_t* L = src + 64 * h;
      const uint8_t* H = src + 128 + 32 * h;
      const int8_t* S = reinterpret_cast<const int8_t*>(src + 192) + 8 * h;
      float* Y = out + 128 * h;
      for (int half = 0; half < 2; half++) {
        const float s0 = d * S[half], s2 = d * S[half + 2], s4 = d * S[half + 4], s6 = d * S[half + 6];
        for (int l = 16 * half; l < 16 * half + 16; l++) {
          Y[l] = s0 * static_cast<float>(((L[l] & 15) | (((H[l] >> 0) & 3) << 4)) - 32);
          Y[l + 32] = s2 * static_cast<float>(((L[l + 32] & 15) | (((H[l] >> 2) & 3) << 4)) - 32);
          Y[l + 64] = s4 * static_cast<float>(((L[l] >> 4) | (((H[l] >> 4) & 3) << 4)) - 32);
          Y[l + 96] = s6 * static_cast<float>(((L[l + 32] >> 4) | (((H[l] >> 6) & 3) << 4)) - 32);
        }
      }
    }
  }
}

/** The IQ4_NL / IQ4_XS codebook (ggml's kvalues_iq4nl): 4-bit code q stands for IQ4_VALUES[q]. */
alignas(16) constexpr int8_t IQ4_VALUES[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

void decodeIQ4_NL(const uint8_t* __restrict src, int64_t blocks, float* __restrict out) {
  for (int64_t b = 0; b < blocks; b++, src += 18, out += 32) {
    const float d = halfToFloat(read16(src));
    const uint8_t* q = src + 2;
    for (int j = 0; j < 16; j++) {
      out[j] = d * static_cast<float>(IQ4_VALUES[q[j] & 15]);
      out[j + 16] = d * static_cast<float>(IQ4_VALUES[q[j] >> 4]);
    }
  }
}

/** The eight sub-block scales d · (ls - 32) of an IQ4_XS block. */
inline void iq4xsScales(const uint8_t* blk, float* dl) {
  const float d = halfToFloat(read16(blk));
  const uint16_t h = read16(blk + 2);
  for (int ib = 0; ib < 8; ib++) {
    const int ls = ((blk[4 + ib / 2] >> (4 * (ib % 2))) & 15) | (((h >> (2 * ib)) & 3) << 4);
    dl[ib] = d * static_cast<float>(ls - 32);
  }
}

void decodeIQ4_XS(const uint8_t* __restrict src, int64_t blocks, float* __restrict out) {
  for (int64_t b = 0; b < blocks; b++, src += 136, out += 256) {
    float dl[8];
    iq4xsScales(src, dl);
    for (int ib = 0; ib < 8; ib++) {
      const uint8_t* q = src + 8 + 16 * ib;
      float* y = out + 32 * ib;
      for (int j = 0; j < 16; j++) {
        y[j] = dl[ib] * static_cast<float>(IQ4_VALUES[q[j] & 15]);
        y[j + 16] = dl[ib] * static_cast<float>(IQ4_VALUES[q[j] >> 4]);
      }
    }
  }
}

void decodeQ5_1(const uint8_t* __restrict src, int64_t blocks, float* __restrict out) {
  for (int64_t b = 0; b < blocks; b++, src += 24, out += 32) {
    const float d = halfToFloat(read16(src)), m = halfToFloat(read16(src + 2));
    const uint32_t qh = read32(src + 4);
    const uint8_t* q = src + 8;
    for (int j = 0; j < 16; j++) {
      const int lo = (q[j] & 15) | static_cast<int>(((qh >> j) & 1) << 4);
      const int hi = (q[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
      out[j] = d * static_cast<float>(lo) + m;
      out[j + 16] = d * static_cast<float>(hi) + m;
    }
  }
}

/**
 * The sixteen sub-block scales d · (scales[j] & 15) (sm[0..15]) and mins dmin · (scales[j] >> 4)
 * (sm[16..31]) of a Q2_K block; both products are exact in f32.
 */
inline void q2kScales(const uint8_t* blk, float* sm) {
  const float d = halfToFloat(read16(blk + 80)), dmin = halfToFloat(read16(blk + 82));
  for (int j = 0; j < 16; j++) {
    sm[j] = d * static_cast<float>(blk[j] & 15);
    sm[16 + j] = dmin * static_cast<float>(blk[j] >> 4);
  }
}

/**
 * Q2_K: element 128n + 32k + l (l < 32) is ((qs[32n + l] >> 2k) & 3) · scale - min of sub-block
 * (128n + 32k + l) / 16, as ggml's dequantize_row_q2_K.
 */
void decodeQ2_K(const uint8_t* __restrict src, int64_t blocks, float* __restrict out) {
  for (int64_t b = 0; b < blocks; b++, src += 84, out += 256) {
    float sm[32];
    q2kScales(src, sm);
    for (int n = 0; n < 2; n++) {
      const uint8_t* q = src + 16 + 32 * n;
      for (int k = 0; k < 4; k++) {
        float* y = out + 128 * n + 32 * k;
        const int s = 8 * n + 2 * k;
        for (int l = 0; l < 16; l++) y[l] = sm[s] * static_cast<float>((q[l] >> (2 * k)) & 3) - sm[16 + s];
        for (int l = 16; l < 32; l++) y[l] = sm[s + 1] * static_cast<float>((q[l] >> (2 * k)) & 3) - sm[17 + s];
      }
    }
  }
}

/**
 * The 16 6-bit scales (0..63) of a Q3_K block in order: at s, the low 4 bits of scales 0..7 and
 * 8..15 are the low and high nibbles of bytes 0..7, their top 2 bits the bit pairs of bytes 8..11;
 * four scales per 32-bit word.
 */
inline void q3kScaleBytes(const uint8_t* s, uint8_t* out) {
  uint32_t a0, a1, top;
  std::memcpy(&a0, s, 4);
  std::memcpy(&a1, s + 4, 4);
  std::memcpy(&top, s + 8, 4);
  const uint32_t low4 = 0x0f0f0f0fu, low2 = 0x03030303u;
  const uint32_t words[4] = {(a0 & low4) | ((top & low2) << 4), (a1 & low4) | (((top >> 2) & low2) << 4),
                             ((a0 >> 4) & low4) | (((top >> 4) & low2) << 4), ((a1 >> 4) & low4) | (((top >> 6) & low2) << 4)};
  std::memcpy(out, words, 16);
}

/** The sixteen sub-block scales d · (s - 32) of a Q3_K block (6-bit s; exact in f32). */
inline void q3kScales(const uint8_t* blk, float* sc) {
  const float d = halfToFloat(read16(blk + 108));
  uint8_t s[16];
  q3kScaleBytes(blk + 96, s);
  for (int j = 0; j < 16; j++) sc[j] = d * static_cast<float>(s[j] - 32);
}

/**
 * Q3_K: element 128n + 32k + l (l < 32) is q · scale of sub-block (128n + 32k + l) / 16, with
 * q = ((qs[32n + l] >> 2k) & 3) - 4 unless bit 4n + k of hmask[l] is set, as ggml's dequantize_row_q3_K.
 */
void decodeQ3_K(const uint8_t* __restrict src, int64_t blocks, float* __restrict out) {
  for (int64_t b = 0; b < blocks; b++, src += 110, out += 256) {
    float sc[16];
    q3kScales(src, sc);
    for (int n = 0; n < 2; n++) {
      const uint8_t* q = src + 32 + 32 * n;
      for (int k = 0; k < 4; k++) {
        float* y = out + 128 * n + 32 * k;
        const int s = 8 * n + 2 * k, bit = 4 * n + k;
        for (int l = 0; l < 32; l++) {
          const int v = ((q[l] >> (2 * k)) & 3) - (((src[l] >> bit) & 1) ? 0 : 4);
          y[l] = sc[s + (l >> 4)] * static_cast<float>(v);
        }
      }
    }
  }
}

/** Values [c0, c0 + len) of row `row` of w into out; c0 and len are whole blocks (any for fp8). */
void decodeRow(const Weight& w, int64_t row, int64_t c0, int64_t len, float* out) {
  const BlockShape s = blockShape(w.dtype);
  const uint8_t* src = w.data + row * rowBytes(w) + c0 / s.elements * s.bytes;
  const int64_t blocks = len / s.elements;
  switch (w.dtype) {
    case DT_F32: std::memcpy(out, src, static_cast<size_t>(len) * 4); break;
    case DT_F16: decodeF16(src, len, out); break;
    case DT_BF16: decodeBf16(src, len, out); break;
    case DT_Q8_0: decodeQ8_0(src, blocks, out); break;
    case DT_Q4_0: decodeQ4_0(src, blocks, out); break;
    case DT_Q4_1: decodeQ4_1(src, blocks, out); break;
    case DT_Q5_0: decodeQ5_0(src, blocks, out); break;
    case DT_Q4_K: decodeQ4_K(src, blocks, out); break;
    case DT_Q5_K: decodeQ5_K(src, blocks, out); break;
    case DT_Q6_K: decodeQ6_K(src, blocks, out); break;
    case DT_IQ4_NL: decodeIQ4_NL(src, blocks, out); break;
    case DT_IQ4_XS: decodeIQ4_XS(src, blocks, out); break;
    case DT_Q2_K: decodeQ2_K(src, blocks, out); break;
    case DT_Q3_K: decodeQ3_K(src, blocks, out); break;
    case DT_Q5_1: decodeQ5_1(src, blocks, out); break;
    case DT_FP8: {
      const float* scales = w.blockScales + (row / 128) * ((w.cols + 127) / 128);
      for (int64_t c = 0; c < len;) {
        const int64_t col = c0 + c;
        const int64_t end = imin(len, c + (128 - col % 128));
        decodeFp8(src + c, end - c, scales[col / 128], out + c);
        c = end;
      }
      break;
    }
    default: break;
  }
}

// ---------------------------------------------------------------------------------------------
// f32 GEMM: packed panels, register-blocked microkernel, cache blocking (KC x MC x NC).

#if defined(__AVX512F__)
constexpr int MR = FRUGAL_MR, NR = 32;
#elif defined(__AVX2__)
constexpr int MR = 6, NR = 16;
#else
constexpr int MR = 4, NR = 8;
#endif
#ifndef FRUGAL_KC
#define FRUGAL_KC 512  // 2048^3 on one core: 174-181 GFLOPS against 156-164 with 256 (with the C prefetch)
#endif
#ifndef FRUGAL_MC
#define FRUGAL_MC 96
#endif
constexpr int64_t KC = FRUGAL_KC;
constexpr int64_t MC = FRUGAL_MC;   // rows of A per packed block (multiple of MR)
constexpr int64_t NCH = 256; // columns per task inside a packed B panel (multiple of NR)
constexpr int64_t NC = 4096; // columns per packed B panel

/** C[rows, cols] = alpha * tile + beta * C (beta 0: C is not read). */
inline void storeTile(const float* tile, float* c, int64_t ldc, float alpha, float beta, int rows, int cols) {
  for (int r = 0; r < rows; r++)
    for (int j = 0; j < cols; j++) c[r * ldc + j] = alpha * tile[r * NR + j] + (beta == 0.0f ? 0.0f : beta * c[r * ldc + j]);
}

void microkernel(int64_t kc, const float* A, const float* B, float* C, int64_t ldc, float alpha, float beta, int rows, int cols) {
#if defined(__AVX512F__)
  // The C tile is read (beta != 0) and written after the k loop: fetch its lines now so that the
  // misses overlap with the FMAs instead of stalling at the end.
  for (int r = 0; r < rows; r++) {
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc + 16), _MM_HINT_T0);
  }
  __m512 acc[MR][2];
#pragma GCC unroll 16
  for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; p++, A += MR, B += NR) {
    const __m512 b0 = _mm512_load_ps(B), b1 = _mm512_load_ps(B + 16);
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) {
      const __m512 a = _mm512_set1_ps(A[r]);
      acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
    }
  }
  if (rows == MR && cols == NR) {
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int r = 0; r < MR; r++) {
      for (int h = 0; h < 2; h++) {
        float* dst = C + r * ldc + 16 * h;
        __m512 v = _mm512_mul_ps(acc[r][h], va);
        if (beta != 0.0f) v = _mm512_fmadd_ps(vb, _mm512_loadu_ps(dst), v);
        _mm512_storeu_ps(dst, v);
      }
    }
    return;
  }
  alignas(64) float tile[MR * NR];
  for (int r = 0; r < MR; r++) {
    _mm512_store_ps(tile + r * NR, acc[r][0]);
    _mm512_store_ps(tile + r * NR + 16, acc[r][1]);
  }
  storeTile(tile, C, ldc, alpha, beta, rows, cols);
#elif defined(__AVX2__)
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; p++, A += MR, B += NR) {
    const __m256 b0 = _mm256_load_ps(B), b1 = _mm256_load_ps(B + 8);
    __m256 a = _mm256_broadcast_ss(A + 0);
    c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01);
    a = _mm256_broadcast_ss(A + 1);
    c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11);
    a = _mm256_broadcast_ss(A + 2);
    c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21);
    a = _mm256_broadcast_ss(A + 3);
    c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31);
    a = _mm256_broadcast_ss(A + 4);
    c40 = _mm256_fmadd_ps(a, b0, c40); c41 = _mm256_fmadd_ps(a, b1, c41);
    a = _mm256_broadcast_ss(A + 5);
    c50 = _mm256_fmadd_ps(a, b0, c50); c51 = _mm256_fmadd_ps(a, b1, c51);
  }
  const __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (rows == MR && cols == NR) {
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    for (int r = 0; r < MR; r++) {
      for (int h = 0; h < 2; h++) {
        float* dst = C + r * ldc + 8 * h;
        __m256 v = _mm256_mul_ps(acc[r][h], va);
        if (beta != 0.0f) v = _mm256_fmadd_ps(vb, _mm256_loadu_ps(dst), v);
        _mm256_storeu_ps(dst, v);
      }
    }
    return;
  }
  alignas(64) float tile[MR * NR];
  for (int r = 0; r < MR; r++) {
    _mm256_store_ps(tile + r * NR, acc[r][0]);
    _mm256_store_ps(tile + r * NR + 8, acc[r][1]);
  }
  storeTile(tile, C, ldc, alpha, beta, rows, cols);
#else
  float tile[MR * NR];
  for (int i = 0; i < MR * NR; i++) tile[i] = 0.0f;
  for (int64_t p = 0; p < kc; p++, A += MR, B += NR)
    for (int r = 0; r < MR; r++)
      for (int j = 0; j < NR; j++) tile[r * NR + j] += A[r] * B[j];
  storeTile(tile, C, ldc, alpha, beta, rows, cols);
#endif
}

struct GemmJob {
  bool transA, transB;
  int64_t m, n, k;
  float alpha, beta;
  const float* a;
  int64_t lda;
  const float* b;
  int64_t ldb;
  float* c;
  int64_t ldc;
  // current panel
  int64_t jc, nc, pc, kc;
  float betaNow;
  float* Bp;
  int64_t chunks;  // column chunks per panel
  uint64_t stamp;  // identifies the (call, pc) for per-thread A-pack reuse
};

thread_local uint64_t packedStamp = 0;
thread_local int64_t packedBlock = -1;
uint64_t stampCounter = 0;  // shared by every thread that runs a GEMM: incremented atomically

#if defined(__AVX512F__)
/** In-register transpose of a 16x16 tile: r[i] holds row i; afterwards r[c] holds column c. */
inline void transpose16(__m512 (&r)[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; i++) {
    u[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  // u[4i + k] holds, in 128-bit lane L, column 4L + k of rows 4i .. 4i+3.
  for (int k = 0; k < 4; k++) {
    const __m512 w0 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0x88), w1 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0xDD);
    const __m512 w2 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0x88), w3 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0xDD);
    r[k] = _mm512_shuffle_f32x4(w0, w2, 0x88);
    r[8 + k] = _mm512_shuffle_f32x4(w0, w2, 0xDD);
    r[4 + k] = _mm512_shuffle_f32x4(w1, w3, 0x88);
    r[12 + k] = _mm512_shuffle_f32x4(w1, w3, 0xDD);
  }
}

/** dst[p * 32 + j] = src[j * ld + p] for j < cols (zero for cols <= j < 32), p < kc. */
void packTransposedSliver(const float* src, int64_t ld, int cols, int64_t kc, float* dst) {
  for (int64_t p = 0; p < kc; p += 16) {
    const int64_t left = imin(16, kc - p);
    const __mmask16 mask = static_cast<__mmask16>((1u << left) - 1);
    for (int half = 0; half < 2; half++) {
      __m512 r[16];
      for (int i = 0; i < 16; i++) {
        const int j = 16 * half + i;
        r[i] = j < cols ? _mm512_maskz_loadu_ps(mask, src + j * ld + p) : _mm512_setzero_ps();
      }
      transpose16(r);
      for (int64_t q = 0; q < left; q++) _mm512_store_ps(dst + (p + q) * 32 + 16 * half, r[q]);
    }
  }
}
#endif

void packBRange(void* ctx, int64_t s0, int64_t s1, int) {
  const GemmJob& g = *static_cast<const GemmJob*>(ctx);
  for (int64_t s = s0; s < s1; s++) {
    float* dst = g.Bp + s * NR * g.kc;
    const int64_t j0 = g.jc + s * NR;
    const int cols = static_cast<int>(imin(NR, g.jc + g.nc - j0));
    if (!g.transB) {
      for (int64_t p = 0; p < g.kc; p++) {
        const float* src = g.b + (g.pc + p) * g.ldb + j0;
        float* d = dst + p * NR;
        for (int j = 0; j < cols; j++) d[j] = src[j];
        for (int j = cols; j < NR; j++) d[j] = 0.0f;
      }
    } else {
#if defined(__AVX512F__)
      packTransposedSliver(g.b + j0 * g.ldb + g.pc, g.ldb, cols, g.kc, dst);
#else
      for (int j = 0; j < cols; j++) {
        const float* src = g.b + (j0 + j) * g.ldb + g.pc;
        for (int64_t p = 0; p < g.kc; p++) dst[p * NR + j] = src[p];
      }
      for (int j = cols; j < NR; j++)
        for (int64_t p = 0; p < g.kc; p++) dst[p * NR + j] = 0.0f;
#endif
    }
  }
}

#if defined(__AVX512F__)
/** dst[p * 8 + r] = src[r * ld + p] for r < rows (zero for rows <= r < 8), p < kc: 8x8 in-register transposes. */
void packRowsTransposed8(const float* src, int64_t ld, int rows, int64_t kc, float* dst) {
  for (int64_t p = 0; p < kc; p += 8) {
    const int64_t left = imin(8, kc - p);
    const __mmask8 mask = static_cast<__mmask8>((1u << left) - 1);
    __m256 r[8];
    for (int i = 0; i < 8; i++) r[i] = i < rows ? _mm256_maskz_loadu_ps(mask, src + i * ld + p) : _mm256_setzero_ps();
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
      t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
      u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
      u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
      u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
      u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int q = 0; q < 4; q++) {
      r[q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x20);
      r[4 + q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x31);
    }
    for (int64_t q = 0; q < left; q++) _mm256_store_ps(dst + (p + q) * 8, r[q]);
  }
}
#endif

void packA(const GemmJob& g, int64_t i0, int64_t mc, float* Ap) {
  for (int64_t s = 0; s * MR < mc; s++) {
    float* dst = Ap + s * MR * g.kc;
    const int64_t r0 = i0 + s * MR;
    const int rows = static_cast<int>(imin(MR, i0 + mc - r0));
#if defined(__AVX512F__)
    if (!g.transA && MR == 8) {
      packRowsTransposed8(g.a + r0 * g.lda + g.pc, g.lda, rows, g.kc, dst);
      continue;
    }
#endif
    if (!g.transA) {
      for (int r = 0; r < rows; r++) {
        const float* src = g.a + (r0 + r) * g.lda + g.pc;
        for (int64_t p = 0; p < g.kc; p++) dst[p * MR + r] = src[p];
      }
      for (int r = rows; r < MR; r++)
        for (int64_t p = 0; p < g.kc; p++) dst[p * MR + r] = 0.0f;
    } else {
      for (int64_t p = 0; p < g.kc; p++) {
        const float* src = g.a + (g.pc + p) * g.lda + r0;
        float* d = dst + p * MR;
        for (int r = 0; r < rows; r++) d[r] = src[r];
        for (int r = rows; r < MR; r++) d[r] = 0.0f;
      }
    }
  }
}

void gemmTasks(void* ctx, int64_t t0, int64_t t1, int) {
  const GemmJob& g = *static_cast<const GemmJob*>(ctx);
  float* Ap = scratch(2, MC * KC);
  for (int64_t t = t0; t < t1; t++) {
    const int64_t ib = t / g.chunks, jb = t % g.chunks;
    const int64_t i0 = ib * MC, mc = imin(MC, g.m - i0);
    if (packedStamp != g.stamp || packedBlock != ib) {
      packA(g, i0, mc, Ap);
      packedStamp = g.stamp;
      packedBlock = ib;
    }
    const int64_t j0 = jb * NCH, ncc = imin(NCH, g.nc - j0);
    for (int64_t js = 0; js * NR < ncc; js++) {
      const float* Bs = g.Bp + (j0 / NR + js) * NR * g.kc;
      const int cols = static_cast<int>(imin(NR, ncc - js * NR));
      for (int64_t is = 0; is * MR < mc; is++) {
        const int rows = static_cast<int>(imin(MR, mc - is * MR));
        float* C = g.c + (i0 + is * MR) * g.ldc + g.jc + j0 + js * NR;
        microkernel(g.kc, Ap + is * MR * g.kc, Bs, C, g.ldc, g.alpha, g.betaNow, rows, cols);
      }
    }
  }
}

/**
 * The GEMM driver. parallel: the B panel of each (jc, pc) step is packed by all threads, then the
 * threads share the (row block, column chunk) tasks. Serial (one thread does everything) is for
 * callers that already run on a pool thread, such as the prefill matmul.
 */
void gemmCore(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
              const float* b, int64_t ldb, float beta, float* c, int64_t ldc, bool parallel) {
  if (m == 0 || n == 0) return;
  if (k == 0 || alpha == 0.0f) {
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  GemmJob g{transA, transB, m, n, k, alpha, beta, a, lda, b, ldb, c, ldc, 0, 0, 0, 0, beta, nullptr, 0, 0};
  const int64_t panelCols = (imin(n, NC) + NR - 1) / NR * NR;
  g.Bp = scratch(1, static_cast<size_t>(KC * panelCols));
  for (g.jc = 0; g.jc < n; g.jc += NC) {
    g.nc = imin(NC, n - g.jc);
    g.chunks = (g.nc + NCH - 1) / NCH;
    for (g.pc = 0; g.pc < k; g.pc += KC) {
      g.kc = imin(KC, k - g.pc);
      g.betaNow = g.pc == 0 ? beta : 1.0f;
      g.stamp = __atomic_add_fetch(&stampCounter, 1, __ATOMIC_RELAXED);
      const int64_t slivers = (g.nc + NR - 1) / NR, tasks = (m + MC - 1) / MC * g.chunks;
      if (parallel) {
        parallelStatic(slivers, 1, packBRange, &g);
        parallelDynamic(tasks, gemmTasks, &g);
      } else {
        packBRange(&g, 0, slivers, 0);
        gemmTasks(&g, 0, tasks, 0);
      }
    }
  }
}

struct GemmSlabs {
  bool transA, transB;
  int64_t m, n, k;
  float alpha;
  const float* a;
  int64_t lda;
  const float* b;
  int64_t ldb;
  float beta;
  float* c;
  int64_t ldc;
  int64_t slabCols;  // > 0: slabs of columns; else slabRows rows
  int64_t slabRows;
};

void gemmSlab(void* ctx, int64_t s0, int64_t s1, int) {
  const GemmSlabs& g = *static_cast<const GemmSlabs*>(ctx);
  for (int64_t s = s0; s < s1; s++) {
    if (g.slabCols > 0) {
      const int64_t j0 = s * g.slabCols, nc = imin(g.slabCols, g.n - j0);
      if (nc <= 0) continue;
      gemmCore(g.transA, g.transB, g.m, nc, g.k, g.alpha, g.a, g.lda, g.transB ? g.b + j0 * g.ldb : g.b + j0, g.ldb, g.beta, g.c + j0, g.ldc, false);
    } else {
      const int64_t i0 = s * g.slabRows, mc = imin(g.slabRows, g.m - i0);
      if (mc <= 0) continue;
      gemmCore(g.transA, g.transB, mc, g.n, g.k, g.alpha, g.transA ? g.a + i0 : g.a + i0 * g.lda, g.lda, g.b, g.ldb, g.beta, g.c + i0 * g.ldc, g.ldc, false);
    }
  }
}

/**
 * The parallel GEMM: with enough columns (rows) for every thread, each thread multiplies its own
 * slab of C's columns (rows) serially, packing its own panels, with no barrier between the k
 * steps; otherwise the threads share each panel's tasks (gemmCore).
 */
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const int64_t threads = threadCount();
  GemmSlabs g{transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 0, 0};
  if (threads > 1 && n >= threads * 4 * NR) {
    g.slabCols = (n / threads + NR - 1) / NR * NR;
    parallelStatic((n + g.slabCols - 1) / g.slabCols, 1, gemmSlab, &g);
  } else if (threads > 1 && m >= threads * MC) {
    g.slabRows = (m / threads + MR - 1) / MR * MR;
    parallelStatic((m + g.slabRows - 1) / g.slabRows, 1, gemmSlab, &g);
  } else {
    gemmCore(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, true);
  }
}

// ---------------------------------------------------------------------------------------------
// matmul: out[m, rows] = x[m, cols] · Wᵀ

constexpr int64_t SMALL_M = 16;
constexpr int64_t SEGMENT = 1024;  // columns decoded at a time (multiple of every block size)

struct MatvecJob {
  float* out;
  const float* x;  // packed by segment: segment [c0, c0 + len) holds m rows of len values at x + m * c0
  int64_t m;
  int64_t segment;
  const Weight* w;
};

#if defined(__AVX512F__)
#include "matvec_avx512.h"
#elif defined(__AVX2__)
#include "matvec_avx2.h"
#endif

/**
 * Rows [r0, r1) of out = x · Wᵀ for m <= SMALL_M: blocks of MATVEC_ROWS weight rows are walked one
 * column segment at a time, so the activations' segment (m x SEGMENT floats) stays in L1 while
 * each weight byte streams from memory once.
 */
constexpr int64_t MATVEC_ROWS = 8;

/**
 * Weight bytes below which a small-m matmul runs on the calling thread alone: waking the pool
 * costs microseconds on an idle machine and up to a scheduler time slice (milliseconds) on a busy
 * one, while one thread streams 256 KiB in about 10 µs. MLA's per-head products (2 per head per
 * layer) and the router stay here; experts, projections and the head still split across threads.
 * FRUGAL_SMALL_WORK_BYTES overrides it (0: always use the pool).
 */
int64_t smallWorkBytes() {
  static const int64_t bytes = [] {
    const char* env = std::getenv("FRUGAL_SMALL_WORK_BYTES");
    if (env && *env) return static_cast<int64_t>(std::atoll(env));
    return static_cast<int64_t>(256 * 1024);
  }();
  return bytes;
}

/** The grain of a matvec over rows: all rows at once (no pool) when the weight is small. */
int64_t matvecGrain(const Weight& w, int64_t m) {
  return w.rows * rowBytes(w) * (1 + (m - 1) / 4) < smallWorkBytes() ? w.rows : MATVEC_ROWS;
}

#include "matvec_dense.h"
static_assert(DENSE_M >= SMALL_M, "every small-m matmul of dense weights goes to matvecDense");

void matvecRows(void* ctx, int64_t r0, int64_t r1, int) {
  const MatvecJob& j = *static_cast<const MatvecJob*>(ctx);
  const Weight& w = *j.w;
  float* tmp = scratch(0, static_cast<size_t>(j.segment));
  float acc[MATVEC_ROWS][SMALL_M];
  for (int64_t rb = r0; rb < r1; rb += MATVEC_ROWS) {
    const int64_t nr = imin(MATVEC_ROWS, r1 - rb);
    for (int64_t rr = 0; rr < nr; rr++)
      for (int64_t i = 0; i < j.m; i++) acc[rr][i] = 0.0f;
    for (int64_t c0 = 0; c0 < w.cols; c0 += j.segment) {
      const int64_t len = imin(j.segment, w.cols - c0);
      const float* xs = j.x + j.m * c0;
      for (int64_t rr = 0; rr < nr; rr++) {
        const int64_t r = rb + rr;
#if defined(__AVX512F__)
        dotSegmentMany(w, r, c0, len, xs, len, j.m, acc[rr], tmp);
#elif defined(__AVX2__)
        dotSegmentManyAvx2(w, r, c0, len, xs, len, j.m, acc[rr], tmp);
#else
        decodeRow(w, r, c0, len, tmp);
        for (int64_t i = 0; i < j.m; i++) acc[rr][i] += dot(tmp, xs + i * len, len);
#endif
      }
    }
    for (int64_t rr = 0; rr < nr; rr++)
      for (int64_t i = 0; i < j.m; i++) j.out[i * w.rows + rb + rr] = acc[rr][i];
  }
}

#if defined(__AVX512F__)
/**
 * m up to this takes the whole-row kernels (matvecWhole; for m = 2, a speculative verify of one
 * draft, weights decoded once for both activation rows: measured 1.0-1.7x the m = 1 time against
 * 2.1-2.6x on the column-segment path). From m = 3 on the segment path, which decodes once per 4
 * rows, was as fast or faster.
 */
constexpr int64_t WHOLE_ROWS_M = 2;

struct WholeRowsJob {
  float* out;
  const float* x;  // m rows of w.cols values, unpacked
  int64_t m;
  const Weight* w;
};

void matvecWholeJob(void* ctx, int64_t r0, int64_t r1, int) {
  const WholeRowsJob& j = *static_cast<const WholeRowsJob*>(ctx);
  matvecWhole(*j.w, j.x, j.m, j.out, r0, r1);
}
#endif

/**
 * Small-m matmul (f32 / f16 / bf16 weights with m <= DENSE_M: matvecDense; quantized weights with
 * m <= WHOLE_ROWS_M and fp8 on AVX-512: matvecWhole). Otherwise the activations are repacked
 * segment by segment (m rows of one segment stored together): rows of x that are a multiple of
 * 4 KiB apart would otherwise compete for the same L1 sets. The segment shrinks as m
 * grows so that m x segment floats stay well inside L1.
 */
void matvecSmall(float* out, const float* x, int64_t m, const Weight& w) {
  if (m <= DENSE_M && isDense(w.dtype)) {
    matvecDense(out, x, m, w, matvecGrain(w, m));
    return;
  }
#if defined(__AVX512F__)
  // fp8 takes the whole-row kernel for every small m: the segment path's decoder turns its bytes
  // into f32 subnormals (slow on x86), 10x slower at m = 8.
  if ((m <= WHOLE_ROWS_M || w.dtype == DT_FP8) && hasWholeRows(w.dtype)) {
    WholeRowsJob j{out, x, m, &w};
    parallelStatic(w.rows, matvecGrain(w, m), matvecWholeJob, &j);
    return;
  }
#endif
  int64_t segment = 16384 / m / 256 * 256;
  segment = segment < 256 ? 256 : (segment > SEGMENT ? SEGMENT : segment);
  const float* packed = x;
  if (m > 1) {
    float* p = scratch(3, static_cast<size_t>(m * w.cols));
    for (int64_t c0 = 0; c0 < w.cols; c0 += segment) {
      const int64_t len = imin(segment, w.cols - c0);
      for (int64_t i = 0; i < m; i++) std::memcpy(p + m * c0 + i * len, x + i * w.cols + c0, static_cast<size_t>(len) * 4);
    }
    packed = p;
  }
  MatvecJob j{out, packed, m, segment, &w};
  parallelStatic(w.rows, matvecGrain(w, m), matvecRows, &j);
}

struct DequantJob {
  float* out;
  const Weight* w;
  int64_t rowStart;
};

void dequantRange(void* ctx, int64_t r0, int64_t r1, int) {
  const DequantJob& j = *static_cast<const DequantJob*>(ctx);
  for (int64_t r = r0; r < r1; r++) decodeRow(*j.w, j.rowStart + r, 0, j.w->cols, j.out + r * j.w->cols);
}

void dequantizeRows(float* out, const Weight& w, int64_t rowStart, int64_t rowCount) {
  DequantJob j{out, &w, rowStart};
  parallelStatic(rowCount, imin(rowCount, 1 + 65536 / (w.cols + 1)), dequantRange, &j);
}

struct PrefillJob {
  float* out;
  const float* x;
  int64_t m;
  const Weight* w;
  int64_t tileRows;
};

void prefillTiles(void* ctx, int64_t t0, int64_t t1, int) {
  const PrefillJob& j = *static_cast<const PrefillJob*>(ctx);
  const Weight& w = *j.w;
  for (int64_t t = t0; t < t1; t++) {
    const int64_t r0 = t * j.tileRows, nr = imin(j.tileRows, w.rows - r0);
    const float* B;
    if (w.dtype == DT_F32) {
      B = reinterpret_cast<const float*>(w.data + r0 * w.cols * 4);
    } else {
      float* tile = scratch(3, static_cast<size_t>(j.tileRows * w.cols));
      for (int64_t r = 0; r < nr; r++) decodeRow(w, r0 + r, 0, w.cols, tile + r * w.cols);
      B = tile;
    }
    gemmCore(false, true, j.m, nr, w.cols, 1.0f, j.x, w.cols, B, w.cols, 0.0f, j.out + r0, w.rows, false);
  }
}

void matmul(float* out, const float* x, int64_t m, const Weight& w) {
  if (m == 0 || w.rows == 0) return;
  if (w.cols == 0) {
    for (int64_t i = 0; i < m * w.rows; i++) out[i] = 0.0f;
    return;
  }
  if (m <= SMALL_M) {
    matvecSmall(out, x, m, w);
    return;
  }
  // Prefill: each task dequantizes a tile of weight rows into its thread's scratch and multiplies
  // x by it with a single-threaded GEMM (one parallel dispatch per call, no barriers).
  const int64_t threads = threadCount();
  int64_t tile = w.rows / (4 * threads) / 32 * 32;
  tile = tile < 64 ? 64 : (tile > 256 ? 256 : tile);
  PrefillJob j{out, x, m, &w, tile};
  parallelDynamic((w.rows + tile - 1) / tile, prefillTiles, &j);
}

#if defined(__AVX512F__)
#include "matvec_vnni.h"
#include "gemm_int8.h"

/**
 * matmul for CPUs with AVX-512 VNNI, int8 activations where they pay (the default): Q4_0, Q5_0,
 * Q8_0, IQ4_NL, Q5_1, Q4_K, Q6_K, Q3_K, Q2_K and IQ4_XS with m > SMALL_M (gemm_int8.h), and with
 * m <= SMALL_M Q4_0, Q8_0, IQ4_NL and Q5_1 (even block counts; x as q8_0), Q4_K, Q6_K, Q2_K, Q3_K
 * and IQ4_XS (x as q8_K) (matvec_vnni.h): a decode step, a speculative verify and a batch of
 * decode steps all round x as ggml does, so a row's result does not depend on how many rows share
 * its matmul, and the int8 kernels are faster than decoding to f32 (2.4-4.2x for m = 3, 4).
 */
void matmulVnniPrefill(float* out, const float* x, int64_t m, const Weight& w) {
  if (int8GemmType(w.dtype) && m > SMALL_M && w.rows > 0 && w.cols > 0) {
    gemmInt8(out, x, m, w);
    return;
  }
  if (kInt8Type(w.dtype) && m <= SMALL_M && w.rows > 0 && w.cols > 0) {
    matvecKInt8(out, x, m, w);
    return;
  }
  if (pairInt8Type(w.dtype) && m <= SMALL_M && w.rows > 0 && w.cols % 64 == 0) {
    matvecPairsInt8(out, x, m, w);
    return;
  }
  matmul(out, x, m, w);
}

/** matmul for CPUs with AVX-512 VNNI, int8 activations everywhere: also Q4_0 with an odd number of blocks and m <= SMALL_M. */
void matmulVnni(float* out, const float* x, int64_t m, const Weight& w) {
  // Q4_K and (even block counts) Q4_0 take matmulVnniPrefill's kernels; odd Q4_0 blocks these.
  if (w.dtype == DT_Q4_0 && w.cols % 64 != 0 && m <= SMALL_M && w.rows > 0 && w.cols > 0) {
    matvecVnni(out, x, m, w);
    return;
  }
  matmulVnniPrefill(out, x, m, w);
}
#elif defined(__AVX2__)
#include "matvec_int8_avx2.h"
#endif

void embeddingGather(float* out, const Weight& w, const int32_t* ids, int64_t count) {
  for (int64_t i = 0; i < count; i++) decodeRow(w, ids[i], 0, w.cols, out + i * w.cols);
}

// ---------------------------------------------------------------------------------------------
// Row-wise and element-wise kernels

void rmsNorm(float* out, const float* x, const float* weight, int64_t rows, int64_t dim, float eps) {
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * dim;
    float* o = out + r * dim;
    const double squares = dot(xr, xr, dim);
    const float inv = static_cast<float>(1.0 / std::sqrt(squares / static_cast<double>(dim) + eps));
    for (int64_t i = 0; i < dim; i++) o[i] = xr[i] * inv * weight[i];
  }
}

void softmax(float* x, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    float* row = x + r * cols;
    float max = -INFINITY;
    for (int64_t i = 0; i < cols; i++) max = row[i] > max ? row[i] : max;
    double sum = 0;
    for (int64_t i = 0; i < cols; i++) {
      row[i] = std::exp(row[i] - max);
      sum += row[i];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t i = 0; i < cols; i++) row[i] *= inv;
  }
}

/** cs[i] = cos(pos·invFreq[i])·factor, sn[i] = sin(..)·factor, i < half (in double, then rounded). */
void ropeAngles(int64_t pos, const float* invFreq, float factor, int64_t half, float* cs, float* sn) {
  for (int64_t i = 0; i < half; i++) {
    const double angle = static_cast<double>(pos) * static_cast<double>(invFreq[i]);
    cs[i] = static_cast<float>(std::cos(angle) * factor);
    sn[i] = static_cast<float>(std::sin(angle) * factor);
  }
}

/**
 * The rows [cos | sin] of ropeAngles for positions 0 .. count-1 of one (invFreq, factor), kept
 * per thread: a decode step rotates a few rows at positions met before (every layer, q and k),
 * and a double sin and cos per pair cost more than the rotation itself. Values are the ones
 * ropeAngles computes, so results do not change.
 */
struct RopeTable {
  float invFreq[256];
  int64_t half = -1;
  float factor = 0;
  float* rows = nullptr;
  int64_t count = 0, capacity = 0;
};
constexpr int64_t ROPE_TABLE_POSITIONS = 32768;  // at most 32768 · 2 · half floats per table
constexpr int ROPE_TABLES = 4;                    // per thread (models with different rope, MTP)

/** The [cos | sin] row of `pos`, from this thread's table for (invFreq, factor); nullptr where not kept. */
const float* ropeTableRow(int64_t pos, const float* invFreq, float factor, int64_t half) {
  struct Tables {
    RopeTable t[ROPE_TABLES];
    int next = 0;
    ~Tables() {
      for (RopeTable& table : t) std::free(table.rows);
    }
  };
  static thread_local Tables tables;
  if (pos < 0 || pos >= ROPE_TABLE_POSITIONS || half > 256) return nullptr;
  RopeTable* table = nullptr;
  for (RopeTable& candidate : tables.t) {
    if (candidate.half == half && candidate.factor == factor && std::memcmp(candidate.invFreq, invFreq, static_cast<size_t>(half) * 4) == 0) {
      table = &candidate;
      break;
    }
  }
  if (!table) {
    table = &tables.t[tables.next];
    tables.next = (tables.next + 1) % ROPE_TABLES;
    std::memcpy(table->invFreq, invFreq, static_cast<size_t>(half) * 4);
    table->half = half;
    table->factor = factor;
    table->count = 0;
  }
  if (pos >= table->count) {
    if (pos >= table->capacity) {
      int64_t capacity = table->capacity > 0 ? table->capacity : 256;
      while (capacity <= pos) capacity *= 2;
      if (capacity > ROPE_TABLE_POSITIONS) capacity = ROPE_TABLE_POSITIONS;
      float* rows = static_cast<float*>(std::realloc(table->rows, static_cast<size_t>(capacity * 2 * half) * 4));
      if (!rows) return nullptr;
      table->rows = rows;
      table->capacity = capacity;
    }
    for (int64_t q = table->count; q <= pos; q++) ropeAngles(q, invFreq, factor, half, table->rows + q * 2 * half, table->rows + q * 2 * half + half);
    table->count = pos + 1;
  }
  return table->rows + pos * 2 * half;
}

void rope(float* x, const RopeArgs& p) {
  const int64_t half = p.ropeDim / 2;
  float* own = scratch(0, static_cast<size_t>(2 * half + 2));
  for (int64_t t = 0; t < p.tokens; t++) {
    const float* row = ropeTableRow(p.positions[t], p.invFreq, p.attentionFactor, half);
    if (!row) {
      ropeAngles(p.positions[t], p.invFreq, p.attentionFactor, half, own, own + half);
      row = own;
    }
    const float* cs = row;
    const float* sn = row + half;
    for (int64_t h = 0; h < p.heads; h++) {
      float* base = x + t * p.tokenStride + h * p.headStride + p.offset;
      if (p.neox) {
        for (int64_t i = 0; i < half; i++) {
          const float x0 = base[i], x1 = base[i + half];
          base[i] = x0 * cs[i] - x1 * sn[i];
          base[i + half] = x0 * sn[i] + x1 * cs[i];
        }
      } else {
        for (int64_t i = 0; i < half; i++) {
          const float x0 = base[2 * i], x1 = base[2 * i + 1];
          base[2 * i] = x0 * cs[i] - x1 * sn[i];
          base[2 * i + 1] = x0 * sn[i] + x1 * cs[i];
        }
      }
    }
  }
}

struct SiluMulJob {
  float* out;
  const float* gate;
  const float* up;
};

/**
 * e^x for x in [-87, 88] (clamped outside) to about 2e-7 relative, branch-free so that loops over
 * it vectorize at each level: x = k·ln 2 + r with |r| <= ln 2 / 2, e^r by its degree-7 Taylor
 * polynomial, 2^k put into the exponent bits.
 */
inline float expFast(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float shifted = x * 1.44269504f + 12582912.0f;  // 1.5 · 2^23: rounds x / ln 2 to an integer
  const float kf = shifted - 12582912.0f;
  const float r = (x - kf * 0.693145752f) - kf * 1.42860677e-6f;  // ln 2 in two parts
  float pr = 1.0f / 5040.0f;
  pr = pr * r + 1.0f / 720.0f;
  pr = pr * r + 1.0f / 120.0f;
  pr = pr * r + 1.0f / 24.0f;
  pr = pr * r + 1.0f / 6.0f;
  pr = pr * r + 0.5f;
  pr = pr * r + 1.0f;
  pr = pr * r + 1.0f;
  const int32_t k = static_cast<int32_t>(kf);
  return pr * bitsToFloat(static_cast<uint32_t>(k + 127) << 23);
}

#if defined(__AVX2__) && !defined(__AVX512F__)
/** expFast on 8 lanes (the same steps as expFast16). */
inline __m256 expFast8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
  const __m256 kf = _mm256_sub_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504f), _mm256_set1_ps(12582912.0f)), _mm256_set1_ps(12582912.0f));
  const __m256 r = _mm256_fnmadd_ps(kf, _mm256_set1_ps(1.42860677e-6f), _mm256_fnmadd_ps(kf, _mm256_set1_ps(0.693145752f), x));
  __m256 pr = _mm256_set1_ps(1.0f / 5040.0f);
  pr = _mm256_fmadd_ps(pr, r, _mm256_set1_ps(1.0f / 720.0f));
  pr = _mm256_fmadd_ps(pr, r, _mm256_set1_ps(1.0f / 120.0f));
  pr = _mm256_fmadd_ps(pr, r, _mm256_set1_ps(1.0f / 24.0f));
  pr = _mm256_fmadd_ps(pr, r, _mm256_set1_ps(1.0f / 6.0f));
  pr = _mm256_fmadd_ps(pr, r, _mm256_set1_ps(0.5f));
  pr = _mm256_fmadd_ps(pr, r, _mm256_set1_ps(1.0f));
  pr = _mm256_fmadd_ps(pr, r, _mm256_set1_ps(1.0f));
  const __m256i k = _mm256_cvttps_epi32(kf);
  return _mm256_mul_ps(pr, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23)));
}
#endif

/**
 * out[i] = silu(gate[i]) · up[i] for i < n; 8 lanes at a time on AVX2 (the same operations as
 * the scalar loop, which the compiler does not vectorize). out may be gate or up itself (in
 * place), never shifted against them: each lane reads before it writes.
 */
inline void siluMulSpan(float* out, const float* gate, const float* up, int64_t n) {
  int64_t i = 0;
#if defined(__AVX2__) && !defined(__AVX512F__)
  const __m256 one = _mm256_set1_ps(1.0f);
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = expFast8(_mm256_sub_ps(_mm256_setzero_ps(), g));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
  }
#endif
#pragma GCC ivdep
  for (; i < n; i++) {
    const float g = gate[i];
    out[i] = g / (1.0f + expFast(-g)) * up[i];
  }
}

void siluMulRange(void* ctx, int64_t i0, int64_t i1, int) {
  const SiluMulJob& j = *static_cast<const SiluMulJob*>(ctx);
  siluMulSpan(j.out + i0, j.gate + i0, j.up + i0, i1 - i0);
}

/** silu(gate) · up; long inputs (prefill: tokens x ffn width) are split across the pool. */
void siluMul(float* out, const float* gate, const float* up, int64_t n) {
  SiluMulJob j{out, gate, up};
  parallelStatic(n, 32768, siluMulRange, &j);
}

void add(float* out, const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void mul(float* out, const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}

void axpy(float* out, float alpha, const float* x, int64_t n) { axpyLoop(out, alpha, x, n); }

struct TopKJob {
  int32_t* idx;
  float* val;
  const float* x;
  int64_t cols, k;
};

void topKRows(void* ctx, int64_t r0, int64_t r1, int) {
  const TopKJob& j = *static_cast<const TopKJob*>(ctx);
  for (int64_t r = r0; r < r1; r++) {
    const float* row = j.x + r * j.cols;
    int32_t* idx = j.idx + r * j.k;
    float* val = j.val + r * j.k;
    int64_t count = 0;
    for (int64_t c = 0; c < j.cols; c++) {
      const float v = row[c];
      if (count == j.k && !(v > val[j.k - 1])) continue;  // ties keep the lower index
      int64_t p = count < j.k ? count++ : j.k - 1;
      while (p > 0 && val[p - 1] < v) {
        val[p] = val[p - 1];
        idx[p] = idx[p - 1];
        p--;
      }
      val[p] = v;
      idx[p] = static_cast<int32_t>(c);
    }
  }
}

void topK(int32_t* outIndices, float* outValues, const float* x, int64_t rows, int64_t cols, int64_t k) {
  if (k == 0) return;
  TopKJob j{outIndices, outValues, x, cols, k};
  parallelStatic(rows, imin(rows, 1 + 262144 / (cols + 1)), topKRows, &j);
}

/** N vectors of columns of weightedValues: the accumulators stay in registers for the whole pass over the keys. */
template <int N>
__attribute__((always_inline)) inline void weightedColumns(float* o, const float* p, const float* v, int64_t stride, int64_t keys, float inv) {
  DVec acc[N];
  for (int i = 0; i < N; i++) acc[i] = dZero();
  for (int64_t s = 0; s < keys; s++) {
    const DVec a = dSet(p[s]);
    const float* row = v + s * stride;
    for (int i = 0; i < N; i++) acc[i] = acc[i] + a * dLoad(row + DV * i);  // a multiply and an add (no contraction in ISO C++)
  }
  const DVec scale = dSet(inv);
  for (int i = 0; i < N; i++) dStore(o + DV * i, acc[i] * scale);
}

/**
 * o[d] = (Σ_s p[s] · v[s · stride + d]) · inv for d < dv, the terms added in key order with a
 * multiply and an add each: axpyLoop's arithmetic (the same bits), but with the sums in registers,
 * 8 vectors of columns per pass over the keys, instead of a load and a store of every sum per key.
 * False (nothing written) when dv is not a multiple of 4 vectors.
 */
inline bool weightedValues(float* o, const float* p, const float* v, int64_t stride, int64_t keys, int64_t dv, float inv) {
  if (dv % (4 * DV) != 0) return false;
  int64_t c = 0;
  for (; c + 8 * DV <= dv; c += 8 * DV) weightedColumns<8>(o + c, p, v + c, stride, keys, inv);
  if (c < dv) weightedColumns<4>(o + c, p, v + c, stride, keys, inv);
  return true;
}

struct AttentionJob {
  float* out;
  const float* q;
  const float* k;
  const float* v;
  const AttentionArgs* p;
};

void attentionTasks(void* ctx, int64_t t0, int64_t t1, int) {
  const AttentionJob& j = *static_cast<const AttentionJob*>(ctx);
  const AttentionArgs& p = *j.p;
  const int64_t group = p.heads / p.kvHeads;
  float* scores = scratch(0, static_cast<size_t>(p.startPos + p.queries));
  float* acc = scratch(1, static_cast<size_t>(p.headDimV));
  for (int64_t task = t0; task < t1; task++) {
    const int64_t t = task / p.heads, h = task % p.heads, g = h / group;
    const int64_t keys = p.startPos + t + 1;
    const float* qv = j.q + (t * p.heads + h) * p.headDimK;
    float max = -INFINITY;
    for (int64_t s = 0; s < keys; s++) {
      const float sc = dot(qv, j.k + s * p.kTokenStride + g * p.kHeadStride, p.headDimK) * p.scale;
      scores[s] = sc;
      max = sc > max ? sc : max;
    }
    double sum = 0;
    for (int64_t s = 0; s < keys; s++) {
      scores[s] = std::exp(scores[s] - max);
      sum += scores[s];
    }
    const float inv = static_cast<float>(1.0 / sum);
    float* o = j.out + (t * p.heads + h) * p.headDimV;
    if (weightedValues(o, scores, j.v + g * p.vHeadStride, p.vTokenStride, keys, p.headDimV, inv)) continue;
    for (int64_t d = 0; d < p.headDimV; d++) acc[d] = 0.0f;
    for (int64_t s = 0; s < keys; s++) axpyLoop(acc, scores[s], j.v + s * p.vTokenStride + g * p.vHeadStride, p.headDimV);
    for (int64_t d = 0; d < p.headDimV; d++) o[d] = acc[d] * inv;
  }
}

/**
 * One task per (query, head), keys in order with dot() and std::exp: the same arithmetic for a
 * prefill row as for the decode step at that position. (A blocked version, scores and P·V as
 * GEMMs per 16 queries, was only ~15% faster here and changed the summation order enough to flip
 * int8 activation roundings downstream against llama.cpp's: 0.19 nats at half the positions of a
 * tiny llama Q4_0 file instead of 1e-5.)
 */
void attention(float* out, const float* q, const float* k, const float* v, const AttentionArgs& p) {
  AttentionJob j{out, q, k, v, &p};
  parallelDynamic(p.queries * p.heads, attentionTasks, &j);
}

double fmaProbe(int64_t iterations) {
#if defined(__AVX512F__)
  __m512 acc[12];
  for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iterations; it++)
    for (int i = 0; i < 12; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, acc[i]);
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return static_cast<double>(iterations) * 12 * 16 * 2;
#elif defined(__AVX2__)
  __m256 acc[12];
  for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iterations; it++)
    for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 s = acc[0];
  for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, acc[i]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  volatile float sink = lanes[0];
  (void)sink;
  return static_cast<double>(iterations) * 12 * 8 * 2;
#else
  float acc[16];
  for (int i = 0; i < 16; i++) acc[i] = static_cast<float>(i);
  for (int64_t it = 0; it < iterations; it++)
    for (int i = 0; i < 16; i++) acc[i] = acc[i] * 0.999999f + 1e-7f;
  float s = 0;
  for (int i = 0; i < 16; i++) s += acc[i];
  volatile float sink = s;
  (void)sink;
  return static_cast<double>(iterations) * 16 * 2;
#endif
}

}  // namespace

#if defined(__AVX512F__)
decltype(Kernels::matmul) matmulVnniEntry() { return matmulVnni; }
decltype(Kernels::matmul) matmulVnniPrefillEntry() { return matmulVnniPrefill; }
#elif defined(__AVX2__)
decltype(Kernels::matmul) matmulInt8Avx2Entry() { return matmulInt8Avx2; }
#endif

#include "train_impl.h"
#include "batch_kernels.h"

Kernels table(const char* name) {
  Kernels t;
  t.name = name;
  t.gemm = gemm;
  t.matmul = matmul;
  t.matmulInt8 = nullptr;
  t.matmulInt8Prefill = nullptr;
  t.dequantizeRows = dequantizeRows;
  t.embeddingGather = embeddingGather;
  t.rmsNorm = rmsNorm;
#if defined(__AVX512F__) || defined(__AVX2__)
  t.softmax = softmaxRows;
#else
  t.softmax = softmax;
#endif
  t.rope = rope;
  t.siluMul = siluMul;
  t.add = add;
  t.mul = mul;
  t.axpy = axpy;
  t.topK = topK;
  t.attention = attention;
  t.fmaProbe = fmaProbe;
  t.train = trainTable();
  t.batch = batchTable();
  return t;
}

}  // namespace FRUGAL_NS
}  // namespace frugal
