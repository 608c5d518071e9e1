// AVX-512 matrix x (few) vectors for quantized and fp8 weights (dense f32 / f16 / bf16 weights
// take matvec_dense.h): each block is decoded to f32 in
// registers (dequantize-in-register) and multiplied into up to 4 activation rows at once, so
// every weight byte is read from memory once per group of rows (and from L1 for the next group).
// Included by kernels_impl.h inside its anonymous namespace when __AVX512F__ is defined.

#define FRUGAL_INLINE __attribute__((always_inline)) inline
#define FRUGAL_INLINE_STATIC __attribute__((always_inline)) static void

inline __m512 cvtU8(__m128i bytes) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes)); }
inline __m512 cvtI8(__m128i bytes) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes)); }
inline __m128i load128(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

// Each decoder yields its block as pieces of 32 weights (two zmm), in column order.
struct DecQ8_0 {
  static constexpr int E = 32, B = 34;
  struct State { __m512 d; };
  FRUGAL_INLINE_STATIC prepare(const uint8_t* blk, State& s) { s.d = _mm512_set1_ps(halfToFloat(read16(blk))); }
  FRUGAL_INLINE_STATIC piece(const uint8_t* blk, const State& s, int, __m512& lo, __m512& hi) {
    lo = _mm512_mul_ps(cvtI8(load128(blk + 2)), s.d);
    hi = _mm512_mul_ps(cvtI8(load128(blk + 18)), s.d);
  }
};

/**
 * 4-bit codes through a 16-entry table: vpermps looks up the (already scaled) value of each code
 * from the low 4 bits of its lane, which replaces the mask, int->float conversion and scaling.
 * table[q] = q · d - offset, rounded once (an FMA), exactly as the straightforward decode.
 */
FRUGAL_INLINE __m512 nibbleTable(float d, float offset) {
  const __m512 codes = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  return _mm512_fmsub_ps(codes, _mm512_set1_ps(d), _mm512_set1_ps(offset));
}

struct DecQ4_0 {
  static constexpr int E = 32, B = 18;
  struct State { __m512 table; };
  FRUGAL_INLINE_STATIC prepare(const uint8_t* blk, State& s) {
    const float d = halfToFloat(read16(blk));
    s.table = nibbleTable(d, 8.0f * d);
  }
  FRUGAL_INLINE_STATIC piece(const uint8_t* blk, const State& s, int, __m512& lo, __m512& hi) {
    const __m512i q = _mm512_cvtepu8_epi32(load128(blk + 2));
    lo = _mm512_permutexvar_ps(q, s.table);
    hi = _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), s.table);
  }
};

struct DecQ4_1 {
  static constexpr int E = 32, B = 20;
  struct State { __m512 table; };
  FRUGAL_INLINE_STATIC prepare(const uint8_t* blk, State& s) { s.table = nibbleTable(halfToFloat(read16(blk)), -halfToFloat(read16(blk + 2))); }
  FRUGAL_INLINE_STATIC piece(const uint8_t* blk, const State& s, int, __m512& lo, __m512& hi) {
    const __m512i q = _mm512_cvtepu8_epi32(load128(blk + 4));
    lo = _mm512_permutexvar_ps(q, s.table);
    hi = _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), s.table);
  }
};

/** 5-bit codes: a 32-entry table in two registers (vpermt2ps picks by the low 5 bits of each lane). */
FRUGAL_INLINE void fiveBitTables(float d, float offset, __m512& low, __m512& high) {
  low = nibbleTable(d, offset);
  high = nibbleTable(d, offset - 16.0f * d);
}

/**
 * A 5-bit block's 32 values (Q5_0, Q5_1) from its 16 code bytes at `q` (low nibbles: values 0..15,
 * high: 16..31) and the fifth bits qh, looked up in the 32-entry table [low | high].
 */
FRUGAL_INLINE void fiveBitPiece(const uint8_t* q, uint32_t qh, const __m512& low, const __m512& high, __m512& lo, __m512& hi) {
  const __m512i codes = _mm512_cvtepu8_epi32(load128(q)), fifteen = _mm512_set1_epi32(15), sixteen = _mm512_set1_epi32(16);
  __m512i l = _mm512_and_si512(codes, fifteen), h = _mm512_srli_epi32(codes, 4);
  l = _mm512_mask_or_epi32(l, static_cast<__mmask16>(qh), l, sixteen);
  h = _mm512_mask_or_epi32(h, static_cast<__mmask16>(qh >> 16), h, sixteen);
  lo = _mm512_permutex2var_ps(low, l, high);
  hi = _mm512_permutex2var_ps(low, h, high);
}

struct DecQ5_0 {
  static constexpr int E = 32, B = 22;
  struct State { __m512 low, high; uint32_t qh; };
  FRUGAL_INLINE_STATIC prepare(const uint8_t* blk, State& s) {
    const float d = halfToFloat(read16(blk));
    fiveBitTables(d, 16.0f * d, s.low, s.high);
    s.qh = read32(blk + 2);
  }
  FRUGAL_INLINE_STATIC piece(const uint8_t* blk, const State& s, int, __m512& lo, __m512& hi) {
    fiveBitPiece(blk + 6, s.qh, s.low, s.high, lo, hi);
  }
};

/**
 * Q4_K and Q5_K: scale and min of each of the 8 sub-blocks of 32, multiplied out, as sm[0..7]
 * (scales) and sm[8..15] (mins). The 6-bit fields are unpacked four at a time in 32-bit words
 * (kScaleWords) and converted with one vector op.
 */
FRUGAL_INLINE void kScales(const uint8_t* blk, float* sm) {
  const KScaleWords k = kScaleWords(blk + 4);
  const __m512 codes = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_setr_epi32(static_cast<int>(k.sc03), static_cast<int>(k.sc47), static_cast<int>(k.mn03), static_cast<int>(k.mn47))));
  const __m512 factors = _mm512_insertf32x8(_mm512_set1_ps(halfToFloat(read16(blk))), _mm256_set1_ps(halfToFloat(read16(blk + 2))), 1);
  _mm512_storeu_ps(sm, _mm512_mul_ps(codes, factors));
}

struct DecQ4_K {
  static constexpr int E = 256, B = 144;
  struct State { float sm[16]; };
  FRUGAL_INLINE_STATIC prepare(const uint8_t* blk, State& s) { kScales(blk, s.sm); }
  FRUGAL_INLINE_STATIC piece(const uint8_t* blk, const State& s, int p, __m512& lo, __m512& hi) {
    // piece p = sub-block p: low nibbles of qs[32(p/2) ..] when p is even, high nibbles when odd.
    const uint8_t* q = blk + 16 + 32 * (p >> 1);
    __m512i a = _mm512_cvtepu8_epi32(load128(q)), b = _mm512_cvtepu8_epi32(load128(q + 16));
    if (p & 1) {
      a = _mm512_srli_epi32(a, 4);
      b = _mm512_srli_epi32(b, 4);
    }
    const __m512 table = nibbleTable(s.sm[p], s.sm[8 + p]);
    lo = _mm512_permutexvar_ps(a, table);
    hi = _mm512_permutexvar_ps(b, table);
  }
};

struct DecQ5_K {
  static constexpr int E = 256, B = 176;
  struct State { float sm[16]; };
  FRUGAL_INLINE_STATIC prepare(const uint8_t* blk, State& s) { kScales(blk, s.sm); }
  FRUGAL_INLINE_STATIC piece(const uint8_t* blk, const State& s, int p, __m512& lo, __m512& hi) {
    const uint8_t* q = blk + 48 + 32 * (p >> 1);
    __m512i a = _mm512_cvtepu8_epi32(load128(q)), b = _mm512_cvtepu8_epi32(load128(q + 16));
    if (p & 1) {
      a = _mm512_srli_epi32(a, 4);
      b = _mm512_srli_epi32(b, 4);
    }
    // The fifth bit of element l of sub-block p is bit p of qh[l].
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16));
    const __mmask32 bits = _mm256_test_epi8_mask(qh, _mm256_set1_epi8(static_cast<char>(1 << p)));
    const __m512i fifteen = _mm512_set1_epi32(15), sixteen = _mm512_set1_epi32(16);
    a = _mm512_mask_or_epi32(_mm512_and_si512(a, fifteen), static_cast<__mmask16>(bits), _mm512_and_si512(a, fifteen), sixteen);
    b = _mm512_mask_or_epi32(_mm512_and_si512(b, fifteen), static_cast<__mmask16>(bits >> 16), _mm512_and_si512(b, fifteen), sixteen);
    __m512 low, high;
    fiveBitTables(s.sm[p], s.sm[8 + p], low, high);
    lo = _mm512_permutex2var_ps(low, a, high);
    hi = _mm512_permutex2var_ps(low, b, high);
  }
};

struct DecQ6_K {
  static constexpr int E = 256, B = 210;
  struct State { float scale[16]; };
  FRUGAL_INLINE_STATIC prepare(const uint8_t* blk, State& s) {
    const __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(load128(blk + 192)));
    _mm512_storeu_ps(s.scale, _mm512_mul_ps(sc, _mm512_set1_ps(halfToFloat(read16(blk + 208)))));
  }
  FRUGAL_INLINE_STATIC piece(const uint8_t* blk, const State& s, int p, __m512& lo, __m512& hi) {
    // Piece p covers elements 32p .. 32p+31: half h = p/4, quarter k = p%4 (Y[l + 32k] of the spec's table).
    const int h = p >> 2, k = p & 3;
    const uint8_t* L = blk + 64 * h + ((k & 1) ? 32 : 0);
    const uint8_t* H = blk + 128 + 32 * h;
    const __m128i mask = _mm_set1_epi8(15), three = _mm_set1_epi8(3);
    __m128i la = load128(L), lb = load128(L + 16);
    if (k >= 2) {
      la = _mm_srli_epi16(la, 4);
      lb = _mm_srli_epi16(lb, 4);
    }
    __m128i ha = load128(H), hb = load128(H + 16);
    const int shift = 2 * k;
    ha = _mm_and_si128(_mm_srl_epi16(ha, _mm_cvtsi32_si128(shift)), three);
    hb = _mm_and_si128(_mm_srl_epi16(hb, _mm_cvtsi32_si128(shift)), three);
    // 6-bit codes minus 32, in bytes (-32..31) before widening.
    const __m128i qa = _mm_sub_epi8(_mm_or_si128(_mm_and_si128(la, mask), _mm_slli_epi16(ha, 4)), _mm_set1_epi8(32));
    const __m128i qb = _mm_sub_epi8(_mm_or_si128(_mm_and_si128(lb, mask), _mm_slli_epi16(hb, 4)), _mm_set1_epi8(32));
    // Sub-block scales: S[s + 2k] with s = l / 16 (l < 16 -> s = 0), S = scales + 8h.
    const float* S = s.scale + 8 * h + 2 * k;
    lo = _mm512_mul_ps(cvtI8(qa), _mm512_set1_ps(S[0]));
    hi = _mm512_mul_ps(cvtI8(qb), _mm512_set1_ps(S[1]));
  }
};

/** IQ4_NL / IQ4_XS: the codebook times the (sub-)block scale, looked up by code as the nibble tables are. */
FRUGAL_INLINE __m512 iq4Table(float d) {
  return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(IQ4_VALUES)))), _mm512_set1_ps(d));
}

struct DecIQ4_NL {
  static constexpr int E = 32, B = 18;
  struct State { __m512 table; };
  FRUGAL_INLINE_STATIC prepare(const uint8_t* blk, State& s) { s.table = iq4Table(halfToFloat(read16(blk))); }
  FRUGAL_INLINE_STATIC piece(const uint8_t* blk, const State& s, int, __m512& lo, __m512& hi) {
    const __m512i q = _mm512_cvtepu8_epi32(load128(blk + 2));
    lo = _mm512_permutexvar_ps(q, s.table);
    hi = _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), s.table);
  }
};

struct DecIQ4_XS {
  static constexpr int E = 256, B = 136;
  struct State { float dl[8]; };
  FRUGAL_INLINE_STATIC prepare(const uint8_t* blk, State& s) { iq4xsScales(blk, s.dl); }
  FRUGAL_INLINE_STATIC piece(const uint8_t* blk, const State& s, int p, __m512& lo, __m512& hi) {
    // piece p = sub-block p: low nibbles of qs[16p ..] are its first 16 values, high nibbles the rest.
    const __m512i q = _mm512_cvtepu8_epi32(load128(blk + 8 + 16 * p));
    const __m512 table = iq4Table(s.dl[p]);
    lo = _mm512_permutexvar_ps(q, table);
    hi = _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), table);
  }
};

struct DecQ5_1 {
  static constexpr int E = 32, B = 24;
  struct State { __m512 low, high; uint32_t qh; };
  FRUGAL_INLINE_STATIC prepare(const uint8_t* blk, State& s) {
    // table[q] = q · d + m for q < 32, each rounded once (q · d is exact), as the scalar decode.
    const __m512 codes = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 d = _mm512_set1_ps(halfToFloat(read16(blk))), m = _mm512_set1_ps(halfToFloat(read16(blk + 2)));
    s.low = _mm512_fmadd_ps(codes, d, m);
    s.high = _mm512_fmadd_ps(_mm512_add_ps(codes, _mm512_set1_ps(16.0f)), d, m);
    s.qh = read32(blk + 4);
  }
  FRUGAL_INLINE_STATIC piece(const uint8_t* blk, const State& s, int, __m512& lo, __m512& hi) {
    fiveBitPiece(blk + 8, s.qh, s.low, s.high, lo, hi);
  }
};

/**
 * Q2_K and Q3_K: piece p (half n = p / 4, bit pair k = p % 4 of the 32 bytes qs[32n ..]) holds
 * sub-blocks 2p (its first 16 values) and 2p + 1, each looked up in its own scaled table.
 */
struct DecQ2_K {
  static constexpr int E = 256, B = 84;
  struct State { float sm[32]; };
  FRUGAL_INLINE_STATIC prepare(const uint8_t* blk, State& s) { q2kScales(blk, s.sm); }
  FRUGAL_INLINE_STATIC piece(const uint8_t* blk, const State& s, int p, __m512& lo, __m512& hi) {
    const uint8_t* q = blk + 16 + 32 * (p >> 2);
    const __m128i shift = _mm_cvtsi32_si128(2 * (p & 3));
    const __m512i a = _mm512_srl_epi32(_mm512_cvtepu8_epi32(load128(q)), shift);
    const __m512i b = _mm512_srl_epi32(_mm512_cvtepu8_epi32(load128(q + 16)), shift);
    // table[c] = c · scale - min; only codes 0..3 are used (vpermps reads the low 4 bits: mask to 2).
    const __m512i three = _mm512_set1_epi32(3);
    lo = _mm512_permutexvar_ps(_mm512_and_si512(a, three), nibbleTable(s.sm[2 * p], s.sm[16 + 2 * p]));
    hi = _mm512_permutexvar_ps(_mm512_and_si512(b, three), nibbleTable(s.sm[2 * p + 1], s.sm[17 + 2 * p]));
  }
};

struct DecQ3_K {
  static constexpr int E = 256, B = 110;
  struct State { float sc[16]; };
  FRUGAL_INLINE_STATIC prepare(const uint8_t* blk, State& s) { q3kScales(blk, s.sc); }
  FRUGAL_INLINE_STATIC piece(const uint8_t* blk, const State& s, int p, __m512& lo, __m512& hi) {
    const int n = p >> 2, k = p & 3;
    const uint8_t* q = blk + 32 + 32 * n;
    const __m128i shift = _mm_cvtsi32_si128(2 * k);
    const __m512i three = _mm512_set1_epi32(3), four = _mm512_set1_epi32(4);
    __m512i a = _mm512_and_si512(_mm512_srl_epi32(_mm512_cvtepu8_epi32(load128(q)), shift), three);
    __m512i b = _mm512_and_si512(_mm512_srl_epi32(_mm512_cvtepu8_epi32(load128(q + 16)), shift), three);
    // Code c = low | 4 · (bit 4n + k of hmask[l]) stands for c - 4: table[c] = c · scale - 4 · scale (exact).
    const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk));
    const __mmask32 bits = _mm256_test_epi8_mask(hm, _mm256_set1_epi8(static_cast<char>(1 << (4 * n + k))));
    a = _mm512_mask_or_epi32(a, static_cast<__mmask16>(bits), a, four);
    b = _mm512_mask_or_epi32(b, static_cast<__mmask16>(bits >> 16), b, four);
    lo = _mm512_permutexvar_ps(a, nibbleTable(s.sc[2 * p], 4.0f * s.sc[2 * p]));
    hi = _mm512_permutexvar_ps(b, nibbleTable(s.sc[2 * p + 1], 4.0f * s.sc[2 * p + 1]));
  }
};

template <class D, int G>
FRUGAL_INLINE void accumulatePiece(const uint8_t* blk, const typename D::State& s, int p, const float* xp, int64_t ldx, __m512 (&acc)[G][2]) {
  __m512 lo, hi;
  D::piece(blk, s, p, lo, hi);
  for (int g = 0; g < G; g++) {
    acc[g][0] = _mm512_fmadd_ps(lo, _mm512_loadu_ps(xp + g * ldx), acc[g][0]);
    acc[g][1] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xp + g * ldx + 16), acc[g][1]);
  }
}

/**
 * res[g] += dot(columns [c0, ...) of weight row r, x + g * ldx) for g < G, over `blocks` blocks;
 * c0 is a multiple of 256, and x points at the activations of column c0 of the first row.
 * With few rows, U independent accumulator sets hide the FMA latency (4 cycles).
 */
template <class D, int G>
void dotSegment(const Weight& w, int64_t r, int64_t c0, int64_t blocks, const float* x, int64_t ldx, float* res) {
  constexpr int P = D::E / 32;
  constexpr int U = G == 1 ? 4 : (G == 2 ? 2 : 1);
  __m512 acc[U][G][2];
  for (int u = 0; u < U; u++)
    for (int g = 0; g < G; g++) acc[u][g][0] = acc[u][g][1] = _mm512_setzero_ps();
  const uint8_t* blk = w.data + r * rowBytes(w) + c0 / D::E * D::B;
  if constexpr (P >= U) {
    for (int64_t b = 0; b < blocks; b++, blk += D::B) {
      typename D::State s;
      D::prepare(blk, s);
#pragma GCC unroll 8
      for (int p = 0; p < P; p++) accumulatePiece<D, G>(blk, s, p, x + b * D::E + 32 * p, ldx, acc[p % U]);
    }
  } else {
    int64_t b = 0;
    for (; b + U <= blocks; b += U, blk += U * D::B) {
#pragma GCC unroll 4
      for (int u = 0; u < U; u++) {
        typename D::State s;
        D::prepare(blk + u * D::B, s);
        accumulatePiece<D, G>(blk + u * D::B, s, 0, x + (b + u) * 32, ldx, acc[u]);
      }
    }
    for (; b < blocks; b++, blk += D::B) {
      typename D::State s;
      D::prepare(blk, s);
      accumulatePiece<D, G>(blk, s, 0, x + b * 32, ldx, acc[0]);
    }
  }
  for (int g = 0; g < G; g++) {
    __m512 sum = _mm512_add_ps(acc[0][g][0], acc[0][g][1]);
    for (int u = 1; u < U; u++) sum = _mm512_add_ps(sum, _mm512_add_ps(acc[u][g][0], acc[u][g][1]));
    res[g] += _mm512_reduce_add_ps(sum);
  }
}

/** Returns how many columns from c0 were covered (whole 32-column pieces / whole blocks). */
template <int G>
int64_t dotSegmentFast(const Weight& w, int64_t r, int64_t c0, int64_t len, const float* x, int64_t ldx, float* res) {
  const int64_t pieces = len / 32;
  switch (w.dtype) {
    case DT_Q8_0: dotSegment<DecQ8_0, G>(w, r, c0, pieces, x, ldx, res); return len;
    case DT_Q4_0: dotSegment<DecQ4_0, G>(w, r, c0, pieces, x, ldx, res); return len;
    case DT_Q4_1: dotSegment<DecQ4_1, G>(w, r, c0, pieces, x, ldx, res); return len;
    case DT_Q5_0: dotSegment<DecQ5_0, G>(w, r, c0, pieces, x, ldx, res); return len;
    case DT_Q4_K: dotSegment<DecQ4_K, G>(w, r, c0, len / 256, x, ldx, res); return len;
    case DT_Q5_K: dotSegment<DecQ5_K, G>(w, r, c0, len / 256, x, ldx, res); return len;
    case DT_Q6_K: dotSegment<DecQ6_K, G>(w, r, c0, len / 256, x, ldx, res); return len;
    case DT_IQ4_NL: dotSegment<DecIQ4_NL, G>(w, r, c0, pieces, x, ldx, res); return len;
    case DT_IQ4_XS: dotSegment<DecIQ4_XS, G>(w, r, c0, len / 256, x, ldx, res); return len;
    case DT_Q2_K: dotSegment<DecQ2_K, G>(w, r, c0, len / 256, x, ldx, res); return len;
    case DT_Q3_K: dotSegment<DecQ3_K, G>(w, r, c0, len / 256, x, ldx, res); return len;
    case DT_Q5_1: dotSegment<DecQ5_1, G>(w, r, c0, pieces, x, ldx, res); return len;
    default: return 0;  // the generic decoder does it all
  }
}

/**
 * res[i] += dot(columns [c0, c0 + len) of weight row r, x + i * ldx) for i < m (x holds the
 * activations of those columns, row after row).
 * Dtypes without a register decoder here (fp8 takes matvecFp8Whole for every small m) go through
 * the generic decoder.
 */
void dotSegmentMany(const Weight& w, int64_t r, int64_t c0, int64_t len, const float* x, int64_t ldx, int64_t m, float* res, float* tmp) {
  int64_t done = 0;
  for (int64_t i = 0; i < m;) {
    const int64_t g = imin(4, m - i);
    const float* xi = x + i * ldx;
    switch (g) {
      case 4: done = dotSegmentFast<4>(w, r, c0, len, xi, ldx, res + i); break;
      case 3: done = dotSegmentFast<3>(w, r, c0, len, xi, ldx, res + i); break;
      case 2: done = dotSegmentFast<2>(w, r, c0, len, xi, ldx, res + i); break;
      default: done = dotSegmentFast<1>(w, r, c0, len, xi, ldx, res + i); break;
    }
    i += g;
  }
  if (done < len) {
    decodeRow(w, r, c0 + done, len - done, tmp);
    for (int64_t i = 0; i < m; i++) res[i] += dot(tmp, x + i * ldx + done, len - done);
  }
}

#ifndef FRUGAL_PREFETCH
#define FRUGAL_PREFETCH 1024
#endif
/** How far ahead in each weight row stream the whole-row matvec prefetches (0: off). */
constexpr int64_t PREFETCH_BYTES = FRUGAL_PREFETCH;

/**
 * m = 1 and 2 (decode, speculative verify): R weight rows against G <= 2 activation rows over the
 * rows' whole length, out[g * ldo + r + i]. The R row streams are read side by side (no column
 * segments, one horizontal sum per row at the end); each 32-weight piece is decoded once and
 * multiplied into the G rows, so with m = 2 a token more costs FMAs, not another pass over the
 * weights; 2R·G accumulators hide the FMA latency.
 */
template <class D, int R, int G>
void dotRowsWholeMany(const Weight& w, int64_t r, const float* x, int64_t ldx, float* out, int64_t ldo) {
  constexpr int P = D::E / 32;
  const int64_t stride = rowBytes(w), blocks = w.cols / D::E;
  const uint8_t* base = w.data + r * stride;
  __m512 acc[R][G][2];
  for (int i = 0; i < R; i++)
    for (int g = 0; g < G; g++) acc[i][g][0] = acc[i][g][1] = _mm512_setzero_ps();
  for (int64_t b = 0; b < blocks; b++) {
    const uint8_t* blk = base + b * D::B;
    typename D::State s[R];
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
      if (PREFETCH_BYTES > 0 && (D::B >= 64 || (b & 1) == 0)) _mm_prefetch(reinterpret_cast<const char*>(blk + i * stride + PREFETCH_BYTES), _MM_HINT_T0);
      D::prepare(blk + i * stride, s[i]);
    }
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) {
      __m512 x0[G], x1[G];
#pragma GCC unroll 4
      for (int g = 0; g < G; g++) {
        x0[g] = _mm512_loadu_ps(x + g * ldx + b * D::E + 32 * p);
        x1[g] = _mm512_loadu_ps(x + g * ldx + b * D::E + 32 * p + 16);
      }
#pragma GCC unroll 4
      for (int i = 0; i < R; i++) {
        __m512 lo, hi;
        D::piece(blk + i * stride, s[i], p, lo, hi);
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
          acc[i][g][0] = _mm512_fmadd_ps(lo, x0[g], acc[i][g][0]);
          acc[i][g][1] = _mm512_fmadd_ps(hi, x1[g], acc[i][g][1]);
        }
      }
    }
  }
  for (int i = 0; i < R; i++)
    for (int g = 0; g < G; g++) out[g * ldo + r + i] = _mm512_reduce_add_ps(_mm512_add_ps(acc[i][g][0], acc[i][g][1]));
}

/**
 * m = 1 over rows [r0, r1): one row at a time, except Q4_K and Q5_K (4 rows side by side). A single
 * row stream reads from DRAM much faster: the Qwen2-1.5B Q8_0 file decoded 14.2-15.4 tokens/s
 * against 12.1 with 4 rows; one core streaming 4096x4096 matrices read Q4_0 at 15.9 against 8.7
 * GB/s and Q6_K at 11.6 against 6.2 (the same speed in cache). The f32 Q4_K decode (VNNI CPUs take
 * the int8 one) was slower so, in cache and streaming, its 4 rows sharing the activations' loads.
 */
template <class D>
void matvecWholeRows(const Weight& w, const float* x, float* out, int64_t r0, int64_t r1) {
  constexpr int R = std::is_same<D, DecQ4_K>::value || std::is_same<D, DecQ5_K>::value ? 4 : 1;
  int64_t r = r0;
  for (; r + R <= r1; r += R) dotRowsWholeMany<D, R, 1>(w, r, x, w.cols, out, w.rows);
  for (; r < r1; r++) dotRowsWholeMany<D, 1, 1>(w, r, x, w.cols, out, w.rows);
}

/**
 * Q4_0, m = 1: codes looked up in a constant table (q - 8), the block's 32 products summed
 * unscaled and scaled once by d (no per-block table to build).
 */
template <int R>
FRUGAL_INLINE void q4_0Block(const uint8_t* blk, int64_t stride, __m512 codes, __m512 x0, __m512 x1, __m512 (&acc)[R]) {
#pragma GCC unroll 4
  for (int i = 0; i < R; i++) {
    const uint8_t* q = blk + i * stride;
    const __m512i v = _mm512_cvtepu8_epi32(load128(q + 2));
    const __m512 t = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), codes), x1, _mm512_mul_ps(_mm512_permutexvar_ps(v, codes), x0));
    acc[i] = _mm512_fmadd_ps(t, _mm512_set1_ps(halfToFloat(read16(q))), acc[i]);
  }
}

template <int R>
void dotRowsQ4_0(const Weight& w, int64_t r, const float* x, float* res) {
  const int64_t stride = rowBytes(w), blocks = w.cols / 32;
  const uint8_t* base = w.data + r * stride;
  const __m512 codes = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
  __m512 even[R], odd[R];
  for (int i = 0; i < R; i++) even[i] = odd[i] = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= blocks; b += 2) {
    const uint8_t* blk = base + b * 18;
    if (PREFETCH_BYTES > 0)
      for (int i = 0; i < R; i++) _mm_prefetch(reinterpret_cast<const char*>(blk + i * stride + PREFETCH_BYTES), _MM_HINT_T0);
    q4_0Block<R>(blk, stride, codes, _mm512_loadu_ps(x + 32 * b), _mm512_loadu_ps(x + 32 * b + 16), even);
    q4_0Block<R>(blk + 18, stride, codes, _mm512_loadu_ps(x + 32 * b + 32), _mm512_loadu_ps(x + 32 * b + 48), odd);
  }
  if (b < blocks) q4_0Block<R>(base + b * 18, stride, codes, _mm512_loadu_ps(x + 32 * b), _mm512_loadu_ps(x + 32 * b + 16), even);
  for (int i = 0; i < R; i++) res[i] = _mm512_reduce_add_ps(_mm512_add_ps(even[i], odd[i]));
}

/**
 * One block of R weight rows against all m activation rows, 2 at a time: 4 rows x 2 activations
 * keep 16 accumulators in registers, and 4 weight-row streams in flight (as m = 1 has) keep the
 * memory busy; the next pair of activations reads the block's bytes from L1.
 */
template <class D, int R>
void dotRowsWholeGroups(const Weight& w, int64_t r, const float* x, int64_t m, float* out) {
  for (int64_t i = 0; i < m; i += 2) {
    const float* xi = x + i * w.cols;
    float* oi = out + i * w.rows;
    if (m - i >= 2) dotRowsWholeMany<D, R, 2>(w, r, xi, w.cols, oi, w.rows);
    else dotRowsWholeMany<D, R, 1>(w, r, xi, w.cols, oi, w.rows);
  }
}

template <class D>
void matvecFewRows(const Weight& w, const float* x, int64_t m, float* out, int64_t r0, int64_t r1) {
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) dotRowsWholeGroups<D, 4>(w, r, x, m, out);
  for (; r < r1; r++) dotRowsWholeGroups<D, 1>(w, r, x, m, out);
}

/** m = 1 (matvecWholeRows) or m = 2 (matvecFewRows) over weight rows [r0, r1). */
template <class D>
void wholeRows(const Weight& w, const float* x, int64_t m, float* out, int64_t r0, int64_t r1) {
  if (m == 1) matvecWholeRows<D>(w, x, out, r0, r1);
  else matvecFewRows<D>(w, x, m, out, r0, r1);
}

/**
 * fp8 E4M3 to f16 bits, 32 at a time: sign-extended to 16 bits and shifted so that the exponent and
 * mantissa land in f16's fields (bias 15 instead of 7, so every value comes out 2^-8 too small;
 * the caller folds 2^8 into the activations), the copy of the sign at bit 14 cleared. Subnormals
 * become f16 subnormals, exactly; vcvtph2ps then widens without the slow path that f32
 * subnormals take.
 */
FRUGAL_INLINE __m512i fp8ToHalfBits(__m256i bytes) {
  return _mm512_and_si512(_mm512_slli_epi16(_mm512_cvtepi8_epi16(bytes), 7), _mm512_set1_epi16(static_cast<short>(0xBF80)));
}

/** 32 fp8 weights as f32 (2^-8 too small, see fp8ToHalfBits); `seen` tracks NaN bytes (see fp8RowWhole). */
FRUGAL_INLINE void fp8Piece(const uint8_t* p, __m256i& seen, __m512& lo, __m512& hi) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  seen = _mm256_max_epu8(seen, _mm256_or_si256(raw, _mm256_set1_epi8(static_cast<char>(0x80))));
  const __m512i half = fp8ToHalfBits(raw);
  lo = _mm512_cvtph_ps(_mm512_castsi512_si256(half));
  hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(half, 1));
}

/**
 * Fp8 row r against G <= 2 activation rows xs (already multiplied by the row's block scales and
 * 2^8), over the first `cols32` columns (a multiple of 32), 64 columns per step with two
 * accumulator sets to hide the FMA latency. One row at a time reads fastest (rows side by side
 * were slower here, as for Q8_0). NaN bytes (0x7F, 0xFF) make the result NaN, as decoding them
 * would: the largest byte | 0x80 seen is 0xFF exactly then.
 */
template <int G>
void fp8RowWhole(const Weight& w, int64_t r, const float* xs, int64_t ldx, int64_t cols32, float* out, int64_t ldo) {
  const uint8_t* row = w.data + r * w.cols;
  __m512 acc[2][G][2];
  for (int u = 0; u < 2; u++)
    for (int g = 0; g < G; g++) acc[u][g][0] = acc[u][g][1] = _mm512_setzero_ps();
  __m256i seen = _mm256_setzero_si256();
  for (int64_t c = 0; c < cols32; c += 64) {
#pragma GCC unroll 2
    for (int u = 0; u < 2; u++) {
      const int64_t cu = c + 32 * u;
      if (u == 1 && cu >= cols32) break;
      __m512 lo, hi;
      fp8Piece(row + cu, seen, lo, hi);
#pragma GCC unroll 2
      for (int g = 0; g < G; g++) {
        acc[u][g][0] = _mm512_fmadd_ps(lo, _mm512_loadu_ps(xs + g * ldx + cu), acc[u][g][0]);
        acc[u][g][1] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xs + g * ldx + cu + 16), acc[u][g][1]);
      }
    }
  }
  const bool nan = _mm256_cmpeq_epi8_mask(seen, _mm256_set1_epi8(-1)) != 0;
  for (int g = 0; g < G; g++)
    out[g * ldo + r] = nan ? NAN : _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0][g][0], acc[0][g][1]), _mm512_add_ps(acc[1][g][0], acc[1][g][1])));
}

/**
 * m <= SMALL_M fp8 rows [r0, r1): per group of 128 rows (one row of block scales), x times the
 * scales and 2^8 once into scratch, then rows side by side with the f16 decode; columns past the
 * last multiple of 32 are added with the scalar decode.
 */
void matvecFp8Whole(const Weight& w, const float* x, int64_t m, float* out, int64_t r0, int64_t r1) {
  const int64_t cols = w.cols, cols32 = cols / 32 * 32, scaleCols = (cols + 127) / 128;
  // Rows of the scaled x 64 bytes more than a multiple of 4 KiB apart: at 16 KiB (4096 columns)
  // their loads competed for the same L1 sets, and m = 2 ran at a third of m = 1's speed.
  const int64_t ldx = (cols + 15) / 16 * 16 + (cols % 1024 == 0 ? 16 : 0);
  float* xs = scratch(0, static_cast<size_t>(m * ldx));
  for (int64_t g0 = r0; g0 < r1;) {
    const int64_t group = g0 / 128, g1 = imin(r1, (group + 1) * 128);
    const float* scales = w.blockScales + group * scaleCols;
    for (int64_t i = 0; i < m; i++) {
      for (int64_t c0 = 0; c0 < cols; c0 += 128) {
        const float scale = scales[c0 / 128] * 256.0f;
        const int64_t end = imin(cols, c0 + 128);
        int64_t c = c0;
        for (; c + 16 <= end; c += 16) _mm512_storeu_ps(xs + i * ldx + c, _mm512_mul_ps(_mm512_loadu_ps(x + i * cols + c), _mm512_set1_ps(scale)));
        for (; c < end; c++) xs[i * ldx + c] = x[i * cols + c] * scale;
      }
    }
    for (int64_t r = g0; r < g1; r++) {
      for (int64_t i = 0; i < m; i += 2) {  // 2 activation rows per pass; the weight row stays in L1
        if (m - i == 1) fp8RowWhole<1>(w, r, xs + i * ldx, ldx, cols32, out + i * w.rows, w.rows);
        else fp8RowWhole<2>(w, r, xs + i * ldx, ldx, cols32, out + i * w.rows, w.rows);
      }
    }
    for (int64_t r = g0; cols32 < cols && r < g1; r++)
      for (int64_t i = 0; i < m; i++) {
        float tail = 0.0f;
        for (int64_t c = cols32; c < cols; c++) tail += bitsToFloat(fp8Bits(w.data[r * cols + c])) * (scales[c / 128] * TWO_POW_120) * x[i * cols + c];
        out[i * w.rows + r] += tail;
      }
    g0 = g1;
  }
}

/** Whether matvecWhole has kernels for this dtype. */
bool hasWholeRows(int dtype) {
  return dtype == DT_FP8 || dtype == DT_Q8_0 || dtype == DT_Q4_0 || dtype == DT_Q4_1 || dtype == DT_Q5_0 || dtype == DT_Q4_K || dtype == DT_Q5_K || dtype == DT_Q6_K
      || dtype == DT_IQ4_NL || dtype == DT_IQ4_XS || dtype == DT_Q2_K || dtype == DT_Q3_K || dtype == DT_Q5_1;
}

/**
 * out[i * w.rows + r] for r in [r0, r1), i < m (m = 1 or 2): rows of W · x_i with x unpacked (row
 * i at x + i * w.cols), for a dtype that hasWholeRows.
 */
void matvecWhole(const Weight& w, const float* x, int64_t m, float* out, int64_t r0, int64_t r1) {
  switch (w.dtype) {
    case DT_Q8_0: wholeRows<DecQ8_0>(w, x, m, out, r0, r1); break;
    case DT_Q4_0:
      if (m == 1) {
        for (int64_t r = r0; r < r1; r++) dotRowsQ4_0<1>(w, r, x, out + r);  // one row stream: see matvecWholeRows
      } else {
        matvecFewRows<DecQ4_0>(w, x, m, out, r0, r1);
      }
      break;
    case DT_Q4_1: wholeRows<DecQ4_1>(w, x, m, out, r0, r1); break;
    case DT_Q5_0: wholeRows<DecQ5_0>(w, x, m, out, r0, r1); break;
    case DT_Q4_K: wholeRows<DecQ4_K>(w, x, m, out, r0, r1); break;
    case DT_Q5_K: wholeRows<DecQ5_K>(w, x, m, out, r0, r1); break;
    case DT_Q6_K: wholeRows<DecQ6_K>(w, x, m, out, r0, r1); break;
    case DT_IQ4_NL: wholeRows<DecIQ4_NL>(w, x, m, out, r0, r1); break;
    case DT_IQ4_XS: wholeRows<DecIQ4_XS>(w, x, m, out, r0, r1); break;
    case DT_Q2_K: wholeRows<DecQ2_K>(w, x, m, out, r0, r1); break;
    case DT_Q3_K: wholeRows<DecQ3_K>(w, x, m, out, r0, r1); break;
    case DT_Q5_1: wholeRows<DecQ5_1>(w, x, m, out, r0, r1); break;
    case DT_FP8: matvecFp8Whole(w, x, m, out, r0, r1); break;
    default: break;
  }
}
