// Stands in for <immintrin.h> in the emulated build (scripts/emulated-avx512.mjs): the x86
// intrinsics through SIMDe's portable implementations (Debian package libsimde-dev), so that the
// AVX-512 and VNNI kernels run, and are tested against ref, on a CPU without AVX-512. Below are the
// intrinsics SIMDe 0.7.4 lacks, written lane by lane as Intel's guide defines them. The
// reductions add in the order GCC's own _mm512_reduce_add_ps does, so that the emulated kernels
// give the bits that the real ones give.
#pragma once
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/avx2.h>
#include <simde/x86/fma.h>
#include <simde/x86/f16c.h>
#include <cmath>
#include <cstdint>
#include <cstring>
typedef simde__mmask8 __mmask8;
typedef simde__mmask16 __mmask16;
typedef simde__mmask32 __mmask32;
typedef simde__mmask64 __mmask64;
namespace emu {
template <class To, class From> static inline To bits(const From& f) { static_assert(sizeof(To) == sizeof(From), "size"); To t; std::memcpy(&t, &f, sizeof t); return t; }
struct F16 { float v[16]; }; struct I16 { int32_t v[16]; }; struct U8x16 { uint8_t v[16]; }; struct I8x16 { int8_t v[16]; };
struct U16x16 { uint16_t v[16]; }; struct F8 { float v[8]; }; struct D8 { double v[8]; }; struct F4 { float v[4]; };
struct B32 { int8_t v[32]; };
static inline float half(uint16_t h) { return simde_mm_cvtss_f32(simde_mm_cvtph_ps(simde_mm_set1_epi16((short)h))); }
}  // namespace emu
static inline float _cvtsh_ss(unsigned short h) { return emu::half(h); }
static inline unsigned short _cvtss_sh(float f, int) { return (unsigned short)simde_mm_extract_epi16(simde_mm_cvtps_ph(simde_mm_set_ss(f), 0), 0); }
static inline uint64_t _pdep_u64(uint64_t src, uint64_t mask) { uint64_t r = 0; for (uint64_t bb = 1; mask; bb += bb) { if (src & bb) r |= mask & -mask; mask &= mask - 1; } return r; }
static inline float _mm512_reduce_add_ps(__m512 a) {
  emu::F16 x = emu::bits<emu::F16>(a); float t3[8], t6[4];
  for (int i = 0; i < 8; i++) t3[i] = x.v[8 + i] + x.v[i];
  for (int j = 0; j < 4; j++) t6[j] = t3[4 + j] + t3[j];
  return (t6[0] + t6[2]) + (t6[1] + t6[3]);
}
static inline float _mm512_reduce_max_ps(__m512 a) {
  emu::F16 x = emu::bits<emu::F16>(a); float t3[8], t6[4];
  auto mx = [](float p, float q) { return p > q ? p : q; };
  for (int i = 0; i < 8; i++) t3[i] = mx(x.v[8 + i], x.v[i]);
  for (int j = 0; j < 4; j++) t6[j] = mx(t3[4 + j], t3[j]);
  return mx(mx(t6[0], t6[2]), mx(t6[1], t6[3]));
}
static inline int _mm512_reduce_add_epi32(__m512i a) { emu::I16 x = emu::bits<emu::I16>(a); uint32_t s = 0; for (int i = 0; i < 16; i++) s += (uint32_t)x.v[i]; return (int)s; }
static inline __m512 _mm512_cvtepi32_ps(__m512i a) { emu::I16 x = emu::bits<emu::I16>(a); emu::F16 r; for (int i = 0; i < 16; i++) r.v[i] = (float)x.v[i]; return emu::bits<__m512>(r); }
static inline __m512i _mm512_cvtps_epi32(__m512 a) { emu::F16 x = emu::bits<emu::F16>(a); emu::I16 r; for (int i = 0; i < 16; i++) { float v = std::nearbyint(x.v[i]); r.v[i] = (v >= -2147483648.0f && v < 2147483648.0f) ? (int32_t)v : INT32_MIN; } return emu::bits<__m512i>(r); }
static inline __m512i _mm512_cvttps_epi32(__m512 a) { emu::F16 x = emu::bits<emu::F16>(a); emu::I16 r; for (int i = 0; i < 16; i++) { float v = std::trunc(x.v[i]); r.v[i] = (v >= -2147483648.0f && v < 2147483648.0f) ? (int32_t)v : INT32_MIN; } return emu::bits<__m512i>(r); }
static inline __m512 _mm512_cvtph_ps(__m256i a) { emu::U16x16 x = emu::bits<emu::U16x16>(a); emu::F16 r; for (int i = 0; i < 16; i++) r.v[i] = emu::half(x.v[i]); return emu::bits<__m512>(r); }
static inline __m512d _mm512_cvtps_pd(__m256 a) { emu::F8 x = emu::bits<emu::F8>(a); emu::D8 r; for (int i = 0; i < 8; i++) r.v[i] = x.v[i]; return emu::bits<__m512d>(r); }
static inline __m256 _mm512_cvtpd_ps(__m512d a) { emu::D8 x = emu::bits<emu::D8>(a); emu::F8 r; for (int i = 0; i < 8; i++) r.v[i] = (float)x.v[i]; return emu::bits<__m256>(r); }
static inline __m512i _mm512_cvtepu8_epi32(__m128i a) { emu::U8x16 x = emu::bits<emu::U8x16>(a); emu::I16 r; for (int i = 0; i < 16; i++) r.v[i] = x.v[i]; return emu::bits<__m512i>(r); }
static inline __m512i _mm512_cvtepi8_epi32(__m128i a) { emu::I8x16 x = emu::bits<emu::I8x16>(a); emu::I16 r; for (int i = 0; i < 16; i++) r.v[i] = x.v[i]; return emu::bits<__m512i>(r); }
static inline __m512i _mm512_cvtepu16_epi32(__m256i a) { emu::U16x16 x = emu::bits<emu::U16x16>(a); emu::I16 r; for (int i = 0; i < 16; i++) r.v[i] = x.v[i]; return emu::bits<__m512i>(r); }
static inline __m512 _mm512_maskz_loadu_ps(__mmask16 k, const void* p) { emu::F16 r; const float* f = (const float*)p; for (int i = 0; i < 16; i++) r.v[i] = ((k >> i) & 1) ? f[i] : 0.0f; return emu::bits<__m512>(r); }
static inline __m256 _mm256_maskz_loadu_ps(__mmask8 k, const void* p) { emu::F8 r; const float* f = (const float*)p; for (int i = 0; i < 8; i++) r.v[i] = ((k >> i) & 1) ? f[i] : 0.0f; return emu::bits<__m256>(r); }
static inline void _mm512_mask_storeu_ps(void* p, __mmask16 k, __m512 a) { emu::F16 x = emu::bits<emu::F16>(a); float* f = (float*)p; for (int i = 0; i < 16; i++) if ((k >> i) & 1) f[i] = x.v[i]; }
static inline __m512 _mm512_zextps256_ps512(__m256 a) { emu::F16 r = {}; std::memcpy(r.v, &a, 32); return emu::bits<__m512>(r); }
static inline __m512 _mm512_zextps128_ps512(__m128 a) { emu::F16 r = {}; std::memcpy(r.v, &a, 16); return emu::bits<__m512>(r); }
static inline __m512i _mm512_zextsi256_si512(__m256i a) { emu::I16 r = {}; std::memcpy(r.v, &a, 32); return emu::bits<__m512i>(r); }
static inline __mmask32 _mm256_cmpeq_epi8_mask(__m256i a, __m256i b) { emu::B32 x = emu::bits<emu::B32>(a), y = emu::bits<emu::B32>(b); uint32_t m = 0; for (int i = 0; i < 32; i++) if (x.v[i] == y.v[i]) m |= 1u << i; return m; }
template <class V> static inline V emuShuffle128(V a, V b, int imm) { char x[64], y[64], r[64]; std::memcpy(x, &a, 64); std::memcpy(y, &b, 64);
  std::memcpy(r, x + 16 * (imm & 3), 16); std::memcpy(r + 16, x + 16 * ((imm >> 2) & 3), 16); std::memcpy(r + 32, y + 16 * ((imm >> 4) & 3), 16); std::memcpy(r + 48, y + 16 * ((imm >> 6) & 3), 16);
  V o; std::memcpy(&o, r, 64); return o; }
#define _mm512_shuffle_i64x2(a, b, imm) emuShuffle128<__m512i>((a), (b), (imm))
#define _mm512_shuffle_f32x4(a, b, imm) emuShuffle128<__m512>((a), (b), (imm))
static inline __mmask64 _mm512_testn_epi8_mask(__m512i a, __m512i b) { int8_t x[64], y[64]; std::memcpy(x, &a, 64); std::memcpy(y, &b, 64); uint64_t m = 0; for (int i = 0; i < 64; i++) if (!(x[i] & y[i])) m |= 1ull << i; return m; }
static inline __mmask32 _mm256_test_epi8_mask(__m256i a, __m256i b) { int8_t x[32], y[32]; std::memcpy(x, &a, 32); std::memcpy(y, &b, 32); uint32_t m = 0; for (int i = 0; i < 32; i++) if (x[i] & y[i]) m |= 1u << i; return m; }
// SIMDe's portable fmadd rounds the product and the sum apart; the hardware rounds once.
namespace emu {
template <class V, int N> static inline V fused(V a, V b, V c, float sa, float sc) {
  float x[N], y[N], z[N];
  std::memcpy(x, &a, sizeof x); std::memcpy(y, &b, sizeof y); std::memcpy(z, &c, sizeof z);
  for (int i = 0; i < N; i++) x[i] = std::fma(sa * x[i], y[i], sc * z[i]);
  V r; std::memcpy(&r, x, sizeof x); return r;
}
}  // namespace emu
#undef _mm_fmadd_ps
#undef _mm256_fmadd_ps
#undef _mm256_fmsub_ps
#undef _mm256_fnmadd_ps
#undef _mm512_fmadd_ps
#undef _mm512_fmsub_ps
#undef _mm512_fnmadd_ps
#define _mm_fmadd_ps(a, b, c) emu::fused<__m128, 4>((a), (b), (c), 1.0f, 1.0f)
#define _mm256_fmadd_ps(a, b, c) emu::fused<__m256, 8>((a), (b), (c), 1.0f, 1.0f)
#define _mm256_fmsub_ps(a, b, c) emu::fused<__m256, 8>((a), (b), (c), 1.0f, -1.0f)
#define _mm256_fnmadd_ps(a, b, c) emu::fused<__m256, 8>((a), (b), (c), -1.0f, 1.0f)
#define _mm512_fmadd_ps(a, b, c) emu::fused<__m512, 16>((a), (b), (c), 1.0f, 1.0f)
#define _mm512_fmsub_ps(a, b, c) emu::fused<__m512, 16>((a), (b), (c), 1.0f, -1.0f)
#define _mm512_fnmadd_ps(a, b, c) emu::fused<__m512, 16>((a), (b), (c), -1.0f, 1.0f)
#ifndef _MM_FROUND_NO_EXC
#define _MM_FROUND_NO_EXC SIMDE_MM_FROUND_NO_EXC
#endif
static inline __mmask8 _mm512_cmplt_epi64_mask(__m512i a, __m512i b) { int64_t x[8], y[8]; std::memcpy(x, &a, 64); std::memcpy(y, &b, 64); unsigned m = 0; for (int i = 0; i < 8; i++) if (x[i] < y[i]) m |= 1u << i; return (__mmask8)m; }
static inline __m512i _mm512_cvtpd_epi64(__m512d a) { double x[8]; int64_t r[8]; std::memcpy(x, &a, 64); for (int i = 0; i < 8; i++) { double v = std::nearbyint(x[i]); r[i] = (v >= -9223372036854775808.0 && v < 9223372036854775808.0) ? (int64_t)v : INT64_MIN; } __m512i o; std::memcpy(&o, r, 64); return o; }
// SIMDe 0.7.4's _mm512_roundscale_pd keeps fraction bits that imm8 does not ask for.
static inline __m512d emuRoundscalePd(__m512d a, int imm) {
  double x[8]; std::memcpy(x, &a, 64);
  const double scale = std::ldexp(1.0, (imm >> 4) & 15);
  for (int i = 0; i < 8; i++) {
    const double v = x[i] * scale;
    double r;
    switch ((imm & 4) ? 0 : (imm & 3)) {
      case 0: r = std::nearbyint(v); break;
      case 1: r = std::floor(v); break;
      case 2: r = std::ceil(v); break;
      default: r = std::trunc(v); break;
    }
    x[i] = r / scale;
  }
  __m512d o; std::memcpy(&o, x, 64); return o;
}
#undef _mm512_roundscale_pd
#define _mm512_roundscale_pd(a, imm) emuRoundscalePd((a), (imm))
