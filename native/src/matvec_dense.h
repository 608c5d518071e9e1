// Dense weights (f32, f16, bf16) times a few activation rows (m <= DENSE_M), at every SIMD level. Each weight row is read once for all m rows: a block of
// R weight rows is walked column chunk by column chunk, each chunk of the R rows is loaded (and
// converted) once and multiplied into R x m accumulators, and the R x m sums are reduced
// together at the end (a shuffle tree, not one horizontal sum per dot product).
// The activations are packed chunk-interleaved and zero-padded to whole chunks, so that the m
// rows of a chunk are one sequential stream (rows of x a multiple of 4 KiB apart would compete
// for the same L1 sets) and a ragged last chunk needs no special case on the activation side.
// Past DENSE_GROUP rows (more accumulators than registers) the rows go in two groups, each over
// panels of weight rows small enough to be read again from cache for the second group.
// Included by kernels_impl.h inside its anonymous namespace, once per SIMD level.

constexpr int64_t DENSE_M = 16;
/** The most activation rows one pass over the weights multiplies. */
constexpr int64_t DENSE_GROUP = 8;
/** Weight bytes per panel when the activation rows go in two groups (re-read from L1 / L2). */
constexpr int64_t DENSE_PANEL_BYTES = 65536;

#if defined(__AVX512F__)
constexpr int64_t DV = 16;  // floats per vector
typedef __m512 DVec;
inline DVec dZero() { return _mm512_setzero_ps(); }
inline DVec dLoad(const float* p) { return _mm512_loadu_ps(p); }
inline DVec dFma(DVec a, DVec b, DVec c) { return _mm512_fmadd_ps(a, b, c); }
inline DVec dSet(float a) { return _mm512_set1_ps(a); }
inline void dStore(float* p, DVec v) { _mm512_storeu_ps(p, v); }
/** Weight columns [c, c + DV) of a row of dtype DT. */
template <int DT>
__attribute__((always_inline)) inline DVec dLoadW(const uint8_t* row, int64_t c) {
  if (DT == DT_F32) return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + c);
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * c));
  if (DT == DT_F16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
/** out[k] = sum of the lanes of v[k], k < 8. */
inline void dSum8(const DVec* v, float* out) {
  __m512 t[4];
  for (int k = 0; k < 4; k++)
    t[k] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0x44), _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0xEE));
  // 128-bit lane q of u0 holds 4 partial sums of v[q], of u1 4 partial sums of v[4 + q].
  const __m512 u0 = _mm512_add_ps(_mm512_shuffle_f32x4(t[0], t[1], 0x88), _mm512_shuffle_f32x4(t[0], t[1], 0xDD));
  const __m512 u1 = _mm512_add_ps(_mm512_shuffle_f32x4(t[2], t[3], 0x88), _mm512_shuffle_f32x4(t[2], t[3], 0xDD));
  __m512 s = _mm512_add_ps(_mm512_shuffle_ps(u0, u1, 0x88), _mm512_shuffle_ps(u0, u1, 0xDD));
  s = _mm512_add_ps(_mm512_shuffle_ps(s, s, 0x88), _mm512_shuffle_ps(s, s, 0xDD));
  // Lane q: element 0 is the sum of v[q], element 1 the sum of v[4 + q].
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0);
  _mm256_storeu_ps(out, _mm512_castps512_ps256(_mm512_permutexvar_ps(order, s)));
}
/** Weight rows per block for G activation rows (accumulators R x G of 32 registers). */
constexpr int denseRowBlock(int g) { return g == 1 ? 8 : (g <= 4 ? 4 : 2); }

#elif defined(__AVX2__)
constexpr int64_t DV = 8;
typedef __m256 DVec;
inline DVec dZero() { return _mm256_setzero_ps(); }
inline DVec dLoad(const float* p) { return _mm256_loadu_ps(p); }
inline DVec dFma(DVec a, DVec b, DVec c) { return _mm256_fmadd_ps(a, b, c); }
inline DVec dSet(float a) { return _mm256_set1_ps(a); }
inline void dStore(float* p, DVec v) { _mm256_storeu_ps(p, v); }
template <int DT>
__attribute__((always_inline)) inline DVec dLoadW(const uint8_t* row, int64_t c) {
  if (DT == DT_F32) return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + c);
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * c));
  if (DT == DT_F16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline void dSum8(const DVec* v, float* out) {
  const __m256 a = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  const __m256 b = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31)));
}
/** 16 registers: R x G accumulators plus R weight vectors and one activation vector. */
constexpr int denseRowBlock(int g) { return g == 1 ? 8 : (g == 2 ? 4 : (g == 3 ? 3 : (g == 4 ? 2 : 1))); }

#else
// GCC vector extensions: SSE2 on baseline x86-64, NEON on ARM, plain scalar code elsewhere.
constexpr int64_t DV = 4;
typedef float DVec __attribute__((vector_size(16)));
typedef uint16_t DHalves __attribute__((vector_size(16)));
inline DVec dZero() { return DVec{0.0f, 0.0f, 0.0f, 0.0f}; }
inline DVec dLoad(const float* p) {
  DVec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline DVec dFma(DVec a, DVec b, DVec c) { return a * b + c; }
inline DVec dSet(float a) { return DVec{a, a, a, a}; }
inline void dStore(float* p, DVec v) { std::memcpy(p, &v, sizeof v); }
template <int DT>
inline DVec dLoadW(const uint8_t* row, int64_t c) {
  if (DT == DT_F32) return dLoad(reinterpret_cast<const float*>(row) + c);
  const uint8_t* h = row + 2 * c;
  if (DT == DT_F16) return DVec{halfToFloat(read16(h)), halfToFloat(read16(h + 2)), halfToFloat(read16(h + 4)), halfToFloat(read16(h + 6))};
  // bf16: each 16-bit value becomes the high half of a 32-bit lane (interleaved with zeros).
  DHalves halves = {0, 0, 0, 0, 0, 0, 0, 0};
  std::memcpy(&halves, h, 8);
  const DHalves zero = {0, 0, 0, 0, 0, 0, 0, 0};
  const DHalves bits = __builtin_shufflevector(zero, halves, 0, 8, 1, 9, 2, 10, 3, 11);
  DVec v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}
inline void dSum8(const DVec* v, float* out) {
  for (int k = 0; k < 8; k++) out[k] = (v[k][0] + v[k][1]) + (v[k][2] + v[k][3]);
}
/** 16 SSE registers, as AVX2. */
constexpr int denseRowBlock(int g) { return g == 1 ? 8 : (g == 2 ? 4 : (g == 3 ? 3 : (g == 4 ? 2 : 1))); }
#endif

/** out[k] = sum of the lanes of v[k], k < N. */
template <int N>
__attribute__((always_inline)) inline void dSum(const DVec* v, float* out) {
  int k = 0;
  for (; k + 8 <= N; k += 8) dSum8(v + k, out + k);
  if (k < N) {
    DVec padded[8];
    float sums[8];
    for (int i = 0; i < 8; i++) padded[i] = k + i < N ? v[k + i] : dZero();
    dSum8(padded, sums);
    for (int i = 0; k + i < N; i++) out[k + i] = sums[i];
  }
}

int64_t denseElementBytes(int dtype) { return dtype == DT_F32 ? 4 : 2; }

/**
 * out[g * rows + r + i] = dot(weight row r + i, activation row g) for i < R, g < G; x is packed
 * (chunk c of row g at x + (c · m + g) · DV, zero-padded to whole chunks).
 */
template <int DT, int R, int G>
void denseBlock(const Weight& w, int64_t r, const float* x, int64_t m, float* out) {
  const int64_t stride = w.cols * denseElementBytes(DT), full = w.cols / DV, tail = w.cols - full * DV;
  const uint8_t* base = w.data + r * stride;
  DVec acc[R * G];
  for (int k = 0; k < R * G; k++) acc[k] = dZero();
  const float* xc = x;
  for (int64_t c = 0; c < full; c++, xc += m * DV) {
    DVec wv[R];
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) wv[i] = dLoadW<DT>(base + i * stride, c * DV);
#pragma GCC unroll 8
    for (int g = 0; g < G; g++) {
      const DVec xv = dLoad(xc + g * DV);
#pragma GCC unroll 8
      for (int i = 0; i < R; i++) acc[i * G + g] = dFma(wv[i], xv, acc[i * G + g]);
    }
  }
  if (tail > 0) {
    // The ragged last chunk: decoded into zero-padded buffers (the packed x is zero there too).
    alignas(64) float buffer[R][DV];
    for (int i = 0; i < R; i++) {
      decodeRow(w, r + i, full * DV, tail, buffer[i]);
      for (int64_t k = tail; k < DV; k++) buffer[i][k] = 0.0f;
    }
    for (int g = 0; g < G; g++) {
      const DVec xv = dLoad(xc + g * DV);
      for (int i = 0; i < R; i++) acc[i * G + g] = dFma(dLoad(buffer[i]), xv, acc[i * G + g]);
    }
  }
  float sums[R * G];
  dSum<R * G>(acc, sums);
  for (int i = 0; i < R; i++)
    for (int g = 0; g < G; g++) out[g * w.rows + r + i] = sums[i * G + g];
}

/** Rows [r, r1) in blocks of R rows, the rest in blocks of R / 2, ... 1. */
template <int DT, int R, int G>
void denseRange(const Weight& w, int64_t r, int64_t r1, const float* x, int64_t m, float* out) {
  for (; r + R <= r1; r += R) denseBlock<DT, R, G>(w, r, x, m, out);
  if constexpr (R > 1) {
    if (r < r1) denseRange<DT, R / 2, G>(w, r, r1, x, m, out);
  }
}

struct DenseJob {
  float* out;
  const float* x;  // packed, see denseBlock
  int64_t m;
  const Weight* w;
};

/** Rows [r0, r1) times the g activation rows at x (of m packed together), into out (their first row). */
template <int DT>
void denseGroup(const Weight& w, int64_t r0, int64_t r1, const float* x, int64_t g, int64_t m, float* out) {
  switch (g) {
#define FRUGAL_DENSE_CASE(G) \
  case G: denseRange<DT, denseRowBlock(G), G>(w, r0, r1, x, m, out); break;
    FRUGAL_DENSE_CASE(1)
    FRUGAL_DENSE_CASE(2)
    FRUGAL_DENSE_CASE(3)
    FRUGAL_DENSE_CASE(4)
    FRUGAL_DENSE_CASE(5)
    FRUGAL_DENSE_CASE(6)
    FRUGAL_DENSE_CASE(7)
    FRUGAL_DENSE_CASE(8)
#undef FRUGAL_DENSE_CASE
    default: break;
  }
}

template <int DT>
void denseRowsOf(const DenseJob& j, int64_t r0, int64_t r1) {
  const Weight& w = *j.w;
  if (j.m <= DENSE_GROUP) {
    denseGroup<DT>(w, r0, r1, j.x, j.m, j.m, j.out);
    return;
  }
  const int64_t first = (j.m + 1) / 2, stride = w.cols * denseElementBytes(DT);
  const int64_t panel = imin(r1 - r0, DENSE_PANEL_BYTES / stride < 8 ? 8 : DENSE_PANEL_BYTES / stride);
  for (int64_t p0 = r0; p0 < r1; p0 += panel) {
    const int64_t p1 = imin(r1, p0 + panel);
    denseGroup<DT>(w, p0, p1, j.x, first, j.m, j.out);
    denseGroup<DT>(w, p0, p1, j.x + first * DV, j.m - first, j.m, j.out + first * w.rows);
  }
}

void denseRows(void* ctx, int64_t r0, int64_t r1, int) {
  const DenseJob& j = *static_cast<const DenseJob*>(ctx);
  switch (j.w->dtype) {
    case DT_F32: denseRowsOf<DT_F32>(j, r0, r1); break;
    case DT_F16: denseRowsOf<DT_F16>(j, r0, r1); break;
    case DT_BF16: denseRowsOf<DT_BF16>(j, r0, r1); break;
    default: break;
  }
}

bool isDense(int dtype) { return dtype == DT_F32 || dtype == DT_F16 || dtype == DT_BF16; }

/**
 * out[m, rows] = x[m, cols] · Wᵀ for f32 / f16 / bf16 W and 1 <= m <= DENSE_M. The pool splits
 * the rows only when the weight is big enough to pay for waking it (matvecGrain).
 */
void matvecDense(float* out, const float* x, int64_t m, const Weight& w, int64_t grain) {
  const int64_t chunks = (w.cols + DV - 1) / DV;
  const float* packed = x;
  if (m > 1 || w.cols % DV != 0) {
    float* p = scratch(3, static_cast<size_t>(chunks * m * DV));
    for (int64_t g = 0; g < m; g++) {
      const float* xg = x + g * w.cols;
      for (int64_t c = 0; c < chunks; c++) {
        float* dst = p + (c * m + g) * DV;
        const int64_t n = imin(DV, w.cols - c * DV);
        std::memcpy(dst, xg + c * DV, static_cast<size_t>(n) * 4);
        for (int64_t k = n; k < DV; k++) dst[k] = 0.0f;
      }
    }
    packed = p;
  }
  DenseJob j{out, packed, m, &w};
  parallelStatic(w.rows, grain, denseRows, &j);
}
