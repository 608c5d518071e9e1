// AVX2 matrix x (few) vectors, quantized and fp8 weights (dense f32 / f16 / bf16 weights take
// matvec_dense.h): the AVX-512 scheme of matvec_avx512.h (decode each block to f32 in
// registers, multiply into up to 2 activation rows) with 8-lane vectors, 32 weights = 4 ymm.
// Included by kernels_impl.h inside its anonymous namespace when __AVX2__ but not __AVX512F__.

inline __m256 cvtU8x8(__m128i bytes) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes)); }
inline __m256 cvtI8x8(__m128i bytes) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes)); }
inline __m128i load128a(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline __m128i load64(const uint8_t* p) { return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)); }

/** 16 unsigned bytes -> two 8-lane float vectors. */
inline void u8x16(__m128i v, __m256& a, __m256& b) {
  a = cvtU8x8(v);
  b = cvtU8x8(_mm_srli_si128(v, 8));
}

/**
 * A 5-bit block's 32 codes (Q5_0, Q5_1) as floats 0..31 in 4 vectors: the 16 code bytes at `q`
 * (low nibbles, then high; `mask` 15 in each byte) plus 16 · bit i of qh.
 */
inline void fiveBitCodes(const uint8_t* q, uint32_t qh, __m128i mask, __m256 (&codes)[4]) {
  const __m128i bytes = load128a(q);
  u8x16(_mm_and_si128(bytes, mask), codes[0], codes[1]);
  u8x16(_mm_and_si128(_mm_srli_epi16(bytes, 4), mask), codes[2], codes[3]);
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int i = 0; i < 4; i++) {
    const __m256i bits = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(qh >> (8 * i))), lanes), _mm256_set1_epi32(1));
    codes[i] = _mm256_add_ps(codes[i], _mm256_cvtepi32_ps(_mm256_slli_epi32(bits, 4)));
  }
}

struct V4 {
  __m256 v[4];
};

template <int DT>
__attribute__((always_inline)) inline V4 decodePiece(const uint8_t* blk, int p, const float* aux) {
  V4 o;
  const __m128i mask = _mm_set1_epi8(15);
  switch (DT) {
    case DT_Q8_0: {
      const __m256 d = _mm256_set1_ps(halfToFloat(read16(blk)));
      for (int i = 0; i < 4; i++) o.v[i] = _mm256_mul_ps(cvtI8x8(load64(blk + 2 + 8 * i)), d);
      break;
    }
    case DT_Q4_0:
    case DT_Q4_1: {
      const bool q41 = DT == DT_Q4_1;
      const float d = halfToFloat(read16(blk));
      const __m256 vd = _mm256_set1_ps(d);
      const __m256 off = _mm256_set1_ps(q41 ? halfToFloat(read16(blk + 2)) : -8.0f * d);
      const __m128i q = load128a(blk + (q41 ? 4 : 2));
      u8x16(_mm_and_si128(q, mask), o.v[0], o.v[1]);
      u8x16(_mm_and_si128(_mm_srli_epi16(q, 4), mask), o.v[2], o.v[3]);
      for (int i = 0; i < 4; i++) o.v[i] = _mm256_fmadd_ps(o.v[i], vd, off);
      break;
    }
    case DT_Q5_0: {
      const float d = halfToFloat(read16(blk));
      __m256 codes[4];
      fiveBitCodes(blk + 6, read32(blk + 2), mask, codes);
      for (int i = 0; i < 4; i++) o.v[i] = _mm256_mul_ps(_mm256_add_ps(codes[i], _mm256_set1_ps(-16.0f)), _mm256_set1_ps(d));
      break;
    }
    case DT_Q4_K:
    case DT_Q5_K: {
      // aux: scale[8], min[8] of this block (prepared once per block by the caller).
      const bool q5 = DT == DT_Q5_K;
      const uint8_t* q = blk + (q5 ? 48 : 16) + 32 * (p >> 1);
      __m128i a = load128a(q), b = load128a(q + 16);
      if (p & 1) {
        a = _mm_srli_epi16(a, 4);
        b = _mm_srli_epi16(b, 4);
      }
      u8x16(_mm_and_si128(a, mask), o.v[0], o.v[1]);
      u8x16(_mm_and_si128(b, mask), o.v[2], o.v[3]);
      if (q5) {
        const uint8_t* qh = blk + 16;
        for (int i = 0; i < 4; i++) {
          const __m256i h = _mm256_and_si256(_mm256_srli_epi32(_mm256_cvtepu8_epi32(load64(qh + 8 * i)), p), _mm256_set1_epi32(1));
          o.v[i] = _mm256_add_ps(o.v[i], _mm256_cvtepi32_ps(_mm256_slli_epi32(h, 4)));
        }
      }
      const __m256 sc = _mm256_set1_ps(aux[p]), mn = _mm256_set1_ps(aux[8 + p]);
      for (int i = 0; i < 4; i++) o.v[i] = _mm256_fmsub_ps(o.v[i], sc, mn);
      break;
    }
    case DT_Q6_K: {
      // aux: scale[16] of this block. Piece p: half h = p / 4, quarter k = p % 4.
      const int h = p >> 2, k = p & 3;
      const uint8_t* L = blk + 64 * h + ((k & 1) ? 32 : 0);
      const uint8_t* H = blk + 128 + 32 * h;
      const __m128i three = _mm_set1_epi8(3), shift = _mm_cvtsi32_si128(2 * k);
      for (int half = 0; half < 2; half++) {
        __m128i l = load128a(L + 16 * half);
        if (k >= 2) l = _mm_srli_epi16(l, 4);
        const __m128i hb = _mm_and_si128(_mm_srl_epi16(load128a(H + 16 * half), shift), three);
        const __m128i qv = _mm_or_si128(_mm_and_si128(l, mask), _mm_slli_epi16(hb, 4));
        __m256 x0, x1;
        u8x16(qv, x0, x1);
        const __m256 s = _mm256_set1_ps(aux[8 * h + 2 * k + half]);
        const __m256 thirtyTwo = _mm256_set1_ps(32.0f);
        o.v[2 * half] = _mm256_mul_ps(_mm256_sub_ps(x0, thirtyTwo), s);
        o.v[2 * half + 1] = _mm256_mul_ps(_mm256_sub_ps(x1, thirtyTwo), s);
      }
      break;
    }
    case DT_IQ4_NL:
    case DT_IQ4_XS: {
      // Codes looked up in the codebook as bytes (pshufb), widened, times the (sub-)block scale
      // (aux[p]: IQ4_XS's sub-block p): the products d · K[q] of the scalar decode.
      const bool xs = DT == DT_IQ4_XS;
      const __m256 d = _mm256_set1_ps(xs ? aux[p] : halfToFloat(read16(blk)));
      const __m128i table = _mm_load_si128(reinterpret_cast<const __m128i*>(IQ4_VALUES));
      const __m128i q = load128a(blk + (xs ? 8 + 16 * p : 2));
      const __m128i lo = _mm_shuffle_epi8(table, _mm_and_si128(q, mask));
      const __m128i hi = _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(q, 4), mask));
      o.v[0] = _mm256_mul_ps(cvtI8x8(lo), d);
      o.v[1] = _mm256_mul_ps(cvtI8x8(_mm_srli_si128(lo, 8)), d);
      o.v[2] = _mm256_mul_ps(cvtI8x8(hi), d);
      o.v[3] = _mm256_mul_ps(cvtI8x8(_mm_srli_si128(hi, 8)), d);
      break;
    }
    case DT_Q5_1: {
      // As Q5_0, x = q · d + m rounded once (an FMA; q · d is exact).
      const __m256 d = _mm256_set1_ps(halfToFloat(read16(blk))), m = _mm256_set1_ps(halfToFloat(read16(blk + 2)));
      __m256 codes[4];
      fiveBitCodes(blk + 8, read32(blk + 4), mask, codes);
      for (int i = 0; i < 4; i++) o.v[i] = _mm256_fmadd_ps(codes[i], d, m);
      break;
    }
    case DT_Q2_K:
    case DT_Q3_K: {
      // Piece p: half n = p / 4, bit pair k = p % 4 of the 32 bytes qs[32n ..]; its first 16
      // values belong to sub-block 2p, the other 16 to 2p + 1. aux: Q2_K scales[16], mins[16];
      // Q3_K scales[16]. Q3_K's 3rd bit (set: no -4) is bit 4n + k of hmask[l].
      const bool q3 = DT == DT_Q3_K;
      const int n = p >> 2, k = p & 3;
      const uint8_t* q = blk + (q3 ? 32 : 16) + 32 * n;
      const __m128i three = _mm_set1_epi8(3), shift = _mm_cvtsi32_si128(2 * k);
      for (int half = 0; half < 2; half++) {
        __m128i v = _mm_and_si128(_mm_srl_epi16(load128a(q + 16 * half), shift), three);
        if (q3) {
          const __m128i hb = _mm_and_si128(_mm_srl_epi16(load128a(blk + 16 * half), _mm_cvtsi32_si128(4 * n + k)), _mm_set1_epi8(1));
          v = _mm_or_si128(v, _mm_slli_epi16(hb, 2));
        }
        __m256 x0, x1;
        u8x16(v, x0, x1);
        const int sb = 2 * p + half;
        const __m256 s = _mm256_set1_ps(aux[sb]);
        if (q3) {
          const __m256 four = _mm256_set1_ps(4.0f);
          o.v[2 * half] = _mm256_mul_ps(_mm256_sub_ps(x0, four), s);
          o.v[2 * half + 1] = _mm256_mul_ps(_mm256_sub_ps(x1, four), s);
        } else {
          const __m256 mn = _mm256_set1_ps(aux[16 + sb]);
          o.v[2 * half] = _mm256_fmsub_ps(x0, s, mn);
          o.v[2 * half + 1] = _mm256_fmsub_ps(x1, s, mn);
        }
      }
      break;
    }
    default: {  // fp8: aux[0] = block scale times 2^120; 0x7F/0xFF are NaN
      const __m256 s = _mm256_set1_ps(aux[0]);
      const __m256i keep = _mm256_set1_epi32(static_cast<int>(0x87F00000u));
      const __m256i seven = _mm256_set1_epi32(0x7f);
      for (int i = 0; i < 4; i++) {
        const __m256i wide = _mm256_cvtepi8_epi32(load64(blk + 8 * i));
        const __m256i bits = _mm256_and_si256(_mm256_slli_epi32(wide, 20), keep);
        const __m256 nan = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(wide, seven), seven));
        o.v[i] = _mm256_blendv_ps(_mm256_mul_ps(_mm256_castsi256_ps(bits), s), _mm256_set1_ps(NAN), nan);
      }
      break;
    }
  }
  return o;
}

/** Per-block values the pieces need (K-quant scales and mins, Q6_K, IQ4_XS and Q3_K sub-block scales; 32 for Q2_K). */
inline void prepareBlock(const Weight& w, const uint8_t* blk, float* aux) {
  if (w.dtype == DT_Q4_K || w.dtype == DT_Q5_K) {
    const float d = halfToFloat(read16(blk)), dmin = halfToFloat(read16(blk + 2));
    for (int j = 0; j < 8; j++) {
      int sc, mn;
      kScaleMin(j, blk + 4, &sc, &mn);
      aux[j] = d * static_cast<float>(sc);
      aux[8 + j] = dmin * static_cast<float>(mn);
    }
  } else if (w.dtype == DT_Q6_K) {
    const float d = halfToFloat(read16(blk + 208));
    const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192);
    for (int j = 0; j < 16; j++) aux[j] = d * static_cast<float>(sc[j]);
  } else if (w.dtype == DT_IQ4_XS) {
    iq4xsScales(blk, aux);
  } else if (w.dtype == DT_Q2_K) {
    q2kScales(blk, aux);
  } else if (w.dtype == DT_Q3_K) {
    q3kScales(blk, aux);
  }
}

template <int DT, int G>
void dotSegmentAvx2(const Weight& w, int64_t r, int64_t c0, int64_t len, const float* x, int64_t ldx, float* res) {
  const BlockShape shape = blockShape(w.dtype);
  const int64_t E = w.dtype == DT_FP8 || shape.elements == 1 ? 32 : shape.elements;  // elements per "block" walked
  const int64_t B = shape.elements == 1 ? 32 * shape.bytes : shape.bytes;
  const int P = static_cast<int>(E / 32);
  const uint8_t* blk = w.data + r * rowBytes(w) + c0 / E * B;
  const float* fp8Scales = w.dtype == DT_FP8 ? w.blockScales + (r / 128) * ((w.cols + 127) / 128) : nullptr;
  __m256 acc[G][4];
  for (int g = 0; g < G; g++) acc[g][0] = acc[g][1] = acc[g][2] = acc[g][3] = _mm256_setzero_ps();
  float aux[32];
  const int64_t blocks = len / E;
  for (int64_t b = 0; b < blocks; b++, blk += B) {
    if (fp8Scales) aux[0] = fp8Scales[(c0 + 32 * b) / 128] * TWO_POW_120;
    else prepareBlock(w, blk, aux);
    for (int p = 0; p < P; p++) {
      const V4 wv = decodePiece<DT>(blk, p, aux);
      const float* xp = x + b * E + 32 * p;
      for (int g = 0; g < G; g++) {
        for (int i = 0; i < 4; i++) acc[g][i] = _mm256_fmadd_ps(wv.v[i], _mm256_loadu_ps(xp + g * ldx + 8 * i), acc[g][i]);
      }
    }
  }
  for (int g = 0; g < G; g++) {
    res[g] += hsum8(_mm256_add_ps(_mm256_add_ps(acc[g][0], acc[g][1]), _mm256_add_ps(acc[g][2], acc[g][3])));
  }
}

/** As dotSegmentMany in matvec_avx512.h: whole 32-column pieces here, any ragged tail generically. */
void dotSegmentManyAvx2(const Weight& w, int64_t r, int64_t c0, int64_t len, const float* x, int64_t ldx, int64_t m, float* res, float* tmp) {
  const BlockShape shape = blockShape(w.dtype);
  const int64_t unit = shape.elements == 1 ? 32 : shape.elements;
  // Only the dtypes of the switch below have register decoders; any other goes generically.
  const bool decoded = w.dtype >= DT_Q8_0 && w.dtype <= DT_LAST;
  const int64_t fast = decoded ? len / unit * unit : 0;
  if (fast > 0) {
    for (int64_t i = 0; i < m; i += 2) {
      const bool two = m - i >= 2;
      const float* xi = x + i * ldx;
      switch (w.dtype) {
#define FRUGAL_AVX2_CASE(DT)                                                 \
  case DT:                                                                   \
    if (two) dotSegmentAvx2<DT, 2>(w, r, c0, fast, xi, ldx, res + i);        \
    else dotSegmentAvx2<DT, 1>(w, r, c0, fast, xi, ldx, res + i);            \
    break;
        FRUGAL_AVX2_CASE(DT_Q8_0)
        FRUGAL_AVX2_CASE(DT_Q4_0)
        FRUGAL_AVX2_CASE(DT_Q4_1)
        FRUGAL_AVX2_CASE(DT_Q5_0)
        FRUGAL_AVX2_CASE(DT_Q4_K)
        FRUGAL_AVX2_CASE(DT_Q5_K)
        FRUGAL_AVX2_CASE(DT_Q6_K)
        FRUGAL_AVX2_CASE(DT_FP8)
        FRUGAL_AVX2_CASE(DT_IQ4_NL)
        FRUGAL_AVX2_CASE(DT_IQ4_XS)
        FRUGAL_AVX2_CASE(DT_Q2_K)
        FRUGAL_AVX2_CASE(DT_Q3_K)
        FRUGAL_AVX2_CASE(DT_Q5_1)
#undef FRUGAL_AVX2_CASE
        default: break;
      }
    }
  }
  if (fast < len) {
    decodeRow(w, r, c0 + fast, len - fast, tmp);
    for (int64_t i = 0; i < m; i++) res[i] += dot(tmp, x + i * ldx + fast, len - fast);
  }
}
