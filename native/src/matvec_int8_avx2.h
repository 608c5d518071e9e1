// AVX2 matrix x (few) vectors with int8 activations (SMALL_M rows of x at a time), included by
// kernels_impl.h when __AVX2__ but not __AVX512F__ (AVX-512 VNNI has matvec_vnni.h):
//  - Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and IQ4_XS against x rounded as ggml's q8_K (one f32 scale per
//    256 values);
//  - Q8_0, Q4_0, Q5_0 and IQ4_NL against x rounded as ggml's q8_0 (one f16 scale per 32 values),
//    Q4_1 and Q5_1 as q8_1 (q8_0 with each block's sum, for the minimums).
// The same rounding as the VNNI kernels and as llama.cpp, so a decode step's logits agree with
// llama.cpp's as closely on AVX2 as on AVX-512. Products of unsigned codes and int8 x go through
// vpmaddubsw (pairs, exact in int16 for these code ranges) and vpmaddwd (against the sub-block
// scales, or 1), so each block's sum is an exact integer before one f32 multiply-add by d · d_x.
// One weight row at a time against up to 4 activation rows (each block decoded once for the 4).

/** The largest |x| of n values (n a multiple of 8). */
inline float absMax8(const float* x, int64_t n) {
  const __m256 absMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 mx = _mm256_setzero_ps();
  for (int64_t c = 0; c < n; c += 8) mx = _mm256_max_ps(mx, _mm256_and_ps(_mm256_loadu_ps(x + c), absMask));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}

inline int32_t sumInt32x4(__m128i h) {
  h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtsi128_si32(_mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1))));
}

inline int32_t sumInt32x8(__m256i v) { return sumInt32x4(_mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1))); }

/**
 * The 32 values at x times inv, rounded to nearest (ties to even), stored as int8 at q in order;
 * the sums of the first and of the second 16 rounded values go to sums[0], sums[1].
 */
inline void roundBlock32(const float* x, __m256 inv, int8_t* q, int32_t* sums) {
  __m256i v[4];
  for (int k = 0; k < 4; k++) v[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), inv));
  sums[0] = sumInt32x8(_mm256_add_epi32(v[0], v[1]));
  sums[1] = sumInt32x8(_mm256_add_epi32(v[2], v[3]));
  // The packs work per 128-bit lane, leaving the dwords (4 values each) in the order
  // v0[0..3] v1[0..3] v2[0..3] v3[0..3] | v0[4..7] v1[4..7] v2[4..7] v3[4..7]; the permute restores x's order.
  const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

/** x as ggml's q8_K: q [m][cols] in order, d [m][cols / 256], bsums [m][cols / 32] (perThirtyTwo) or [m][cols / 16]. */
void quantizeQ8KAvx2(const float* x, int64_t m, int64_t cols, bool perThirtyTwo, int8_t* q, float* d, int16_t* bsums) {
  for (int64_t i = 0; i < m * cols / 256; i++) {
    const float* xs = x + i * 256;
    const float amax = absMax8(xs, 256);
    d[i] = amax / 127.0f;
    const __m256 inv = _mm256_set1_ps(amax == 0.0f ? 0.0f : 127.0f / amax);
    for (int j = 0; j < 8; j++) {
      int32_t sums[2];
      roundBlock32(xs + 32 * j, inv, q + i * 256 + 32 * j, sums);
      if (perThirtyTwo) {
        bsums[i * 8 + j] = static_cast<int16_t>(sums[0] + sums[1]);
      } else {
        bsums[i * 16 + 2 * j] = static_cast<int16_t>(sums[0]);
        bsums[i * 16 + 2 * j + 1] = static_cast<int16_t>(sums[1]);
      }
    }
  }
}

/**
 * x as ggml's q8_0: q [m][cols] in order, d [m][cols / 32] (amax / 127 rounded to f16, kept in f32
 * beyond f16's range); as q8_1 also sums [m][cols / 32] (Int8Rows::sums), when not null.
 */
void quantizeQ8_0Avx2(const float* x, int64_t m, int64_t cols, int8_t* q, float* d, float* sums) {
  for (int64_t i = 0; i < m * cols / 32; i++) {
    const float* xs = x + i * 32;
    const float amax = absMax8(xs, 32);
    const float scale = amax / 127.0f;
    d[i] = scale <= 65504.0f ? _cvtsh_ss(_cvtss_sh(scale, _MM_FROUND_TO_NEAREST_INT)) : scale;
    int32_t halves[2];
    roundBlock32(xs, _mm256_set1_ps(amax == 0.0f ? 0.0f : 127.0f / amax), q + i * 32, halves);
    if (sums) sums[i] = _cvtsh_ss(_cvtss_sh(scale * static_cast<float>(halves[0] + halves[1]), _MM_FROUND_TO_NEAREST_INT));
  }
}

struct Int8Rows {
  const int8_t* q;       // [m][cols]
  const float* d;        // [m][cols / block]
  const int16_t* bsums;  // q8_K only: sums of 32 (Q4_K, Q5_K) or 16 (the other K types) int8 values
  const float* sums;     // q8_1 only (Q4_1, Q5_1): [m][cols / 32], ggml's s = f16(d · sum of the block's int8 values), d in f32
  const __m256i* offsets;  // Q4_0 / Q5_0 only: [m][cols / 32], per block the codes' offset (8, 16) times the sums of x's int8 values 4 by 4 (one per lane of the dot)
};

/**
 * What one weight block gives each of G activation rows: dot[g], integer products in 8 lanes
 * (offsets such as Q6_K's "- 32" folded in), to be scaled by d · d_x; and minX[g] for the
 * minimums, to be scaled by dmin (K types: Σ min · sum of x's int8 values, subtracted after
 * · d_x; Q4_1 / Q5_1: ggml's q8_1 block sum, added), 0 for types without minimums.
 */
template <int G>
struct BlockSums {
  __m256i dot[G];
  float minX[G];
  float d, dmin;
};

/**
 * minX[g] = the sum of the 4 int32 lanes of partial[g], g < G, as float: exact integers, so the
 * same values as one horizontal sum per row; groups of 4 rows share one vphaddd tree.
 */
template <int G>
__attribute__((always_inline)) inline void minimumSums(const __m128i (&partial)[G], float (&minX)[G]) {
  int g = 0;
  for (; g + 4 <= G; g += 4) {
    const __m128i sums = _mm_hadd_epi32(_mm_hadd_epi32(partial[g], partial[g + 1]), _mm_hadd_epi32(partial[g + 2], partial[g + 3]));
    _mm_storeu_ps(minX + g, _mm_cvtepi32_ps(sums));
  }
  for (; g < G; g++) minX[g] = static_cast<float>(sumInt32x4(partial[g]));
}

/** The 32 4-bit codes of 16 bytes: low nibbles values 0..15, high nibbles 16..31. */
inline __m256i nibbles32(const uint8_t* q) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
  return _mm256_and_si256(_mm256_setr_m128i(bytes, _mm_srli_epi16(bytes, 4)), _mm256_set1_epi8(15));
}

/** Byte j = 16 where bit j of qh is set, else 0 (the fifth bit of Q5_0 / Q5_1 value j). */
inline __m256i fifthBits(uint32_t qh) {
  // byte j takes byte j / 8 of qh, then keeps bit j % 8 of it
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(qh)),
                                             _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(16));
}

/** The 32 codes of 16 IQ4 bytes (low nibbles values 0..15, high 16..31) as their codebook values, signed. */
inline __m256i iq4Codes(const uint8_t* q) {
  return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(IQ4_VALUES))), nibbles32(q));
}

/**
 * The 16 int8 sub-block scales of a K block as int16 words, by halves: half[h] holds scales
 * 8h .. 8h + 7 in both 128-bit lanes, so that scalePair picks any two of a half with one shuffle.
 */
inline void scaleHalves(__m128i scales, __m256i (&half)[2]) {
  half[0] = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(scales));
  half[1] = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_srli_si128(scales, 8)));
}

/** Scale 2k of a half (scaleHalves) in every word of the low lane, scale 2k + 1 in the high lane's: one per 16 values. */
template <int K>
__attribute__((always_inline)) inline __m256i scalePair(__m256i half) {
  return _mm256_shuffle_epi8(half, _mm256_setr_m128i(_mm_set1_epi16(static_cast<int16_t>((4 * K) | ((4 * K + 1) << 8))),
                                                     _mm_set1_epi16(static_cast<int16_t>((4 * K + 2) | ((4 * K + 3) << 8)))));
}

/** Signed 32 codes against the G rows' 32 int8 x at xq (rows `cols` apart): |code| · (x with the code's sign) in vpmaddubsw, pairs by vpmaddwd against `scale`. */
template <int G>
__attribute__((always_inline)) inline void signedDots(__m256i codes, __m256i scale, const int8_t* xq, int64_t cols, __m256i (&dot)[G]) {
  const __m256i magnitude = _mm256_sign_epi8(codes, codes);
#pragma GCC unroll 4
  for (int g = 0; g < G; g++) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + g * cols));
    dot[g] = _mm256_add_epi32(dot[g], _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(xv, codes)), scale));
  }
}

/** Unsigned 32 codes against the G rows' 32 int8 x at xq: vpmaddubsw, then vpmaddwd against `scale`. */
template <int G>
__attribute__((always_inline)) inline void unsignedDots(__m256i codes, __m256i scale, const int8_t* xq, int64_t cols, __m256i (&dot)[G]) {
#pragma GCC unroll 4
  for (int g = 0; g < G; g++) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + g * cols));
    dot[g] = _mm256_add_epi32(dot[g], _mm256_madd_epi16(_mm256_maddubs_epi16(codes, xv), scale));
  }
}

/**
 * Q4_K / Q5_K block b. Per 64 values, 32 code bytes: low nibbles are sub-block 2c, high nibbles
 * 2c + 1 (Q5_K: plus 16 where bit 2c, resp. 2c + 1, of qh's byte is set), each against its 32 x
 * values and its 6-bit scale; 8 minimums against x's sums of 32.
 */
template <int DT, int G>
__attribute__((always_inline)) inline void q45kBlock(const uint8_t* blk, const Int8Rows& x, int64_t cols, int64_t b, BlockSums<G>& s) {
  constexpr bool five = DT == DT_Q5_K;
  const __m256i nibble = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
  const uint8_t* qs = blk + (five ? 48 : 16);
  alignas(16) uint8_t scaleBytes[16];
  kScaleBytes(blk + 4, scaleBytes);
  const __m128i bytes = _mm_load_si128(reinterpret_cast<const __m128i*>(scaleBytes));
  const __m256i scaleWords = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(bytes));
  const __m256i qh = five ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16)) : _mm256_setzero_si256();
  for (int c = 0; c < 4; c++) {
    const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c));
    __m256i low = _mm256_and_si256(codes, nibble), high = _mm256_and_si256(_mm256_srli_epi16(codes, 4), nibble);
    if constexpr (five) {  // bit 2c (2c + 1) of each qh byte, as 16
      low = _mm256_or_si256(low, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4));
      high = _mm256_or_si256(high, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4));
    }
    // byte pair (2k, 2k + 1) of each lane of the scale words: the scale of sub-block k in every word
    const __m256i pickLow = _mm256_set1_epi16(static_cast<int16_t>((4 * c) | ((4 * c + 1) << 8)));
    const __m256i pickHigh = _mm256_set1_epi16(static_cast<int16_t>((4 * c + 2) | ((4 * c + 3) << 8)));
    const int8_t* xq = x.q + 256 * b + 64 * c;
    unsignedDots<G>(low, _mm256_shuffle_epi8(scaleWords, pickLow), xq, cols, s.dot);
    unsignedDots<G>(high, _mm256_shuffle_epi8(scaleWords, pickHigh), xq + 32, cols, s.dot);
  }
  const __m128i minWords = _mm_cvtepu8_epi16(_mm_srli_si128(bytes, 8));
  __m128i partial[G];
  for (int g = 0; g < G; g++)
    partial[g] = _mm_madd_epi16(minWords, _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.bsums + g * (cols / 32) + 8 * b)));
  minimumSums<G>(partial, s.minX);
  s.d = halfToFloat(read16(blk));
  s.dmin = halfToFloat(read16(blk + 2));
}

/**
 * Q2_K / Q3_K block b. Per half block of 128 values, 32 code bytes hold 2 bits of values 32k + l
 * at bits 2k (k < 4); Q3_K adds bit 4n + k of hmask[l] as the third bit. Each 16 values have
 * their own scale (Q2_K: 4 bits with a 4-bit minimum; Q3_K: 6 bits - 32), one per 128-bit lane of
 * vpmaddwd. Q3_K's values are the 3-bit codes - 4 ("- 4 · Σ scale · sum of the 16 int8 x");
 * Q2_K's minimums meet x's sums of 16.
 */
template <int DT, int G>
__attribute__((always_inline)) inline void q23kBlock(const uint8_t* blk, const Int8Rows& x, int64_t cols, int64_t b, BlockSums<G>& s) {
  constexpr bool three = DT == DT_Q3_K;
  const __m256i low2 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
  // scales as int8 (Q3_K: 6 bits - 32; Q2_K: the low nibbles), Q2_K's minimums (high nibbles)
  __m128i scales, mins = _mm_setzero_si128();
  if constexpr (three) {
    alignas(16) uint8_t raw[16];
    q3kScaleBytes(blk + 96, raw);
    scales = _mm_sub_epi8(_mm_load_si128(reinterpret_cast<const __m128i*>(raw)), _mm_set1_epi8(32));
  } else {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk));
    scales = _mm_and_si128(bytes, _mm_set1_epi8(15));
    mins = _mm_and_si128(_mm_srli_epi16(bytes, 4), _mm_set1_epi8(15));
  }
  __m256i half[2];
  scaleHalves(scales, half);
  const uint8_t* qs = blk + (three ? 32 : 16);
  const __m256i hmask = three ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)) : _mm256_setzero_si256();
  const auto quarter = [&](int n, auto kConstant, __m256i q) __attribute__((always_inline)) {
    constexpr int k = decltype(kConstant)::value;
    __m256i codes = _mm256_and_si256(_mm256_srli_epi16(q, 2 * k), low2);
    if constexpr (three) codes = _mm256_or_si256(codes, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hmask, 4 * n + k), one), 2));
    // values 128n + 32k + 0..15 take scale 8n + 2k, the next 16 scale 8n + 2k + 1 (one per 128-bit lane)
    unsignedDots<G>(codes, scalePair<k>(half[n]), x.q + 256 * b + 128 * n + 32 * k, cols, s.dot);
  };
  for (int n = 0; n < 2; n++) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * n));
    quarter(n, std::integral_constant<int, 0>{}, q);
    quarter(n, std::integral_constant<int, 1>{}, q);
    quarter(n, std::integral_constant<int, 2>{}, q);
    quarter(n, std::integral_constant<int, 3>{}, q);
  }
  const __m256i scaleWords = _mm256_cvtepi8_epi16(scales);
  const __m256i minWords = _mm256_cvtepi8_epi16(mins);
  __m128i partial[G];
  for (int g = 0; g < G; g++) {
    const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.bsums + g * (cols / 16) + 16 * b));
    if constexpr (three) {
      s.dot[g] = _mm256_sub_epi32(s.dot[g], _mm256_slli_epi32(_mm256_madd_epi16(scaleWords, bsums), 2));
      s.minX[g] = 0.0f;
    } else {
      const __m256i products = _mm256_madd_epi16(minWords, bsums);
      partial[g] = _mm_add_epi32(_mm256_castsi256_si128(products), _mm256_extracti128_si256(products, 1));
    }
  }
  if constexpr (!three) minimumSums<G>(partial, s.minX);
  s.d = halfToFloat(read16(blk + (three ? 108 : 80)));
  s.dmin = three ? 0.0f : halfToFloat(read16(blk + 82));
}

/**
 * Q6_K block b. Per half block of 128 values: ql's 64 bytes hold the low 4 bits (bytes 0..31:
 * values 0..31 in the low nibbles, 64..95 in the high; bytes 32..63: 32..63 and 96..127), qh's 32
 * bytes the top 2 bits (bit pairs 0, 1, 2, 3 for values l, l + 32, l + 64, l + 96). Codes 0..63
 * meet x through vpmaddubsw, each 16 values' int8 scale through vpmaddwd; the "- 32" is
 * -32 · Σ scale · (sum of the 16 int8 x).
 */
template <int G>
__attribute__((always_inline)) inline void q6kBlock(const uint8_t* blk, const Int8Rows& x, int64_t cols, int64_t b, BlockSums<G>& s) {
  const __m256i low4 = _mm256_set1_epi8(0x0f), low2 = _mm256_set1_epi8(0x03);
  const __m128i scales = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 192));
  __m256i half[2];
  scaleHalves(scales, half);
  for (int h = 0; h < 2; h++) {
    const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * h));
    const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * h + 32));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h));
    const int8_t* xq = x.q + 256 * b + 128 * h;
    // values 128h + 32k + 0..15 take scale 8h + 2k, the next 16 scale 8h + 2k + 1 (one per 128-bit lane)
    unsignedDots<G>(_mm256_or_si256(_mm256_and_si256(ql0, low4), _mm256_slli_epi16(_mm256_and_si256(qh, low2), 4)), scalePair<0>(half[h]), xq, cols, s.dot);
    unsignedDots<G>(_mm256_or_si256(_mm256_and_si256(ql1, low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), low2), 4)), scalePair<1>(half[h]), xq + 32, cols, s.dot);
    unsignedDots<G>(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), low2), 4)), scalePair<2>(half[h]), xq + 64, cols, s.dot);
    unsignedDots<G>(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), low2), 4)), scalePair<3>(half[h]), xq + 96, cols, s.dot);
  }
  const __m256i scaleWords = _mm256_cvtepi8_epi16(scales);
  for (int g = 0; g < G; g++) {
    const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.bsums + g * (cols / 16) + 16 * b));
    s.dot[g] = _mm256_sub_epi32(s.dot[g], _mm256_slli_epi32(_mm256_madd_epi16(scaleWords, bsums), 5));  // 32 · scale · bsum, pairwise
    s.minX[g] = 0.0f;
  }
  s.d = halfToFloat(read16(blk + 208));
  s.dmin = 0.0f;
}

/** IQ4_XS block b: per sub-block of 32, the codebook values (signed) against x, then vpmaddwd against its scale ls - 32. */
template <int G>
__attribute__((always_inline)) inline void iq4xsBlock(const uint8_t* blk, const Int8Rows& x, int64_t cols, int64_t b, BlockSums<G>& s) {
  // the 6-bit scales ls: low 4 bits from the nibbles of bytes 4..7 (sub-block 2i low, 2i + 1 high),
  // top 2 bits from bit pair ib of the u16 at byte 2, spread to one pair per byte
  uint64_t top = read16(blk + 2);
  top = (top | (top << 24)) & 0x000000FF000000FFull;
  top = (top | (top << 12)) & 0x000F000F000F000Full;
  top = (top | (top << 6)) & 0x0303030303030303ull;
  const __m128i packed = _mm_cvtsi32_si128(static_cast<int>(read32(blk + 4)));
  const __m128i nib = _mm_set1_epi8(15);
  const __m128i low = _mm_unpacklo_epi8(_mm_and_si128(packed, nib), _mm_and_si128(_mm_srli_epi16(packed, 4), nib));
  const __m128i ls = _mm_or_si128(low, _mm_slli_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(top)), 4));
  const __m256i words = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_sub_epi8(ls, _mm_set1_epi8(32))));
  const auto sub = [&](auto ibConstant) __attribute__((always_inline)) {
    constexpr int ib = decltype(ibConstant)::value;
    const __m256i scale = _mm256_shuffle_epi8(words, _mm256_set1_epi16(static_cast<int16_t>((2 * ib) | ((2 * ib + 1) << 8))));
    signedDots<G>(iq4Codes(blk + 8 + 16 * ib), scale, x.q + 256 * b + 32 * ib, cols, s.dot);
  };
  sub(std::integral_constant<int, 0>{});
  sub(std::integral_constant<int, 1>{});
  sub(std::integral_constant<int, 2>{});
  sub(std::integral_constant<int, 3>{});
  sub(std::integral_constant<int, 4>{});
  sub(std::integral_constant<int, 5>{});
  sub(std::integral_constant<int, 6>{});
  sub(std::integral_constant<int, 7>{});
  for (int g = 0; g < G; g++) s.minX[g] = 0.0f;
  s.d = halfToFloat(read16(blk));
  s.dmin = 0.0f;
}

/**
 * A block of 32 of the q8_0 / q8_1 types. Signed codes: Q8_0's bytes, Q4_0's nibbles - 8, IQ4_NL's
 * codebook values, Q5_0's 5-bit values - 16. Unsigned codes with a minimum m: Q4_1's nibbles,
 * Q5_1's 5-bit values; m meets x through ggml's q8_1 block sum s (x.sums), as llama.cpp computes it.
 */
template <int DT, int G>
__attribute__((always_inline)) inline void block32(const uint8_t* blk, const Int8Rows& x, int64_t cols, int64_t b, BlockSums<G>& s) {
  const __m256i ones = _mm256_set1_epi16(1);
  const int8_t* xq = x.q + 32 * b;
  s.d = halfToFloat(read16(blk));
  s.dmin = 0.0f;
  for (int g = 0; g < G; g++) s.minX[g] = 0.0f;
  if constexpr (DT == DT_Q8_0) {
    signedDots<G>(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2)), ones, xq, cols, s.dot);
  } else if constexpr (DT == DT_Q4_0 || DT == DT_Q5_0) {
    __m256i codes = nibbles32(blk + (DT == DT_Q5_0 ? 6 : 2));  // Q5_0: bit j of qh is the fifth bit of value j
    if constexpr (DT == DT_Q5_0) codes = _mm256_or_si256(codes, fifthBits(read32(blk + 2)));
    const __m256i offset = _mm256_set1_epi8(DT == DT_Q5_0 ? 16 : 8);
    if constexpr (G <= 2) {
      // 1-2 rows (decode): the unsigned codes straight into vpmaddubsw, minus offset · x (x.offsets),
      // the same integers as (code - offset) · x in fewer instructions
      unsignedDots<G>(codes, ones, xq, cols, s.dot);
      for (int g = 0; g < G; g++) s.dot[g] = _mm256_sub_epi32(s.dot[g], _mm256_load_si256(x.offsets + g * (cols / 32) + b));
    } else {
      signedDots<G>(_mm256_sub_epi8(codes, offset), ones, xq, cols, s.dot);
    }
  } else if constexpr (DT == DT_IQ4_NL) {
    signedDots<G>(iq4Codes(blk + 2), ones, xq, cols, s.dot);
  } else {  // Q4_1 (d, m, nibbles), Q5_1 (d, m, qh, nibbles)
    constexpr bool five = DT == DT_Q5_1;
    __m256i codes = nibbles32(blk + (five ? 8 : 4));
    if constexpr (five) codes = _mm256_or_si256(codes, fifthBits(read32(blk + 4)));
    unsignedDots<G>(codes, ones, xq, cols, s.dot);
    s.dmin = halfToFloat(read16(blk + 2));
    for (int g = 0; g < G; g++) s.minX[g] = x.sums[g * (cols / 32) + b];
  }
}

/** Whether x meets the type as q8_K (256 values per scale) rather than q8_0 / q8_1. */
constexpr bool kBlock256(int dtype) {
  return dtype == DT_Q4_K || dtype == DT_Q5_K || dtype == DT_Q6_K || dtype == DT_IQ4_XS || dtype == DT_Q2_K || dtype == DT_Q3_K;
}
/** Whether the type's minimums meet x's sums per 32 values (else per 16). */
constexpr bool sumsOf32(int dtype) { return dtype == DT_Q4_K || dtype == DT_Q5_K; }

/** The types whose rows sum even and odd blocks in separate chains (short blocks: two dependency chains). */
constexpr bool twoChainTypes(int dtype) { return dtype == DT_Q8_0 || dtype == DT_Q4_0 || dtype == DT_Q5_0 || dtype == DT_IQ4_NL; }

template <int DT, int G>
__attribute__((always_inline)) inline void blockSums(const uint8_t* blk, const Int8Rows& x, int64_t cols, int64_t b, BlockSums<G>& s) {
  for (int g = 0; g < G; g++) s.dot[g] = _mm256_setzero_si256();
  if constexpr (DT == DT_Q4_K || DT == DT_Q5_K) q45kBlock<DT, G>(blk, x, cols, b, s);
  else if constexpr (DT == DT_Q2_K || DT == DT_Q3_K) q23kBlock<DT, G>(blk, x, cols, b, s);
  else if constexpr (DT == DT_Q6_K) q6kBlock<G>(blk, x, cols, b, s);
  else if constexpr (DT == DT_IQ4_XS) iq4xsBlock<G>(blk, x, cols, b, s);
  else block32<DT, G>(blk, x, cols, b, s);
}

/**
 * Row r of a DT weight against G <= 4 activation rows: out[g * ldo + r]. Each block's integer
 * products take d · d_x in one f32 multiply-add, its minimums dmin · minX (K types: · d_x, then
 * subtracted). Q8_0, Q4_0, Q5_0 and IQ4_NL put even and odd blocks in separate accumulators (two
 * dependency chains for their short blocks). The order of these f32 operations is part of the
 * result: a change in it moved a tiny model's log-probabilities by 0.4 nats against llama.cpp's,
 * by flipping int8 roundings of the next layer's activations, so keep it.
 */
template <int DT, int G>
void int8Row(const Weight& w, int64_t r, const Int8Rows& x, float* out, int64_t ldo) {
  constexpr bool twoChains = twoChainTypes(DT);
  constexpr bool q81 = DT == DT_Q4_1 || DT == DT_Q5_1;
  // the types with minimums; the others' minSum stays 0 (the compiler cannot drop 0 · dx · 0 itself: dx might be NaN)
  constexpr bool minimums = q81 || DT == DT_Q4_K || DT == DT_Q5_K || DT == DT_Q2_K;
  const int64_t blocks = w.cols / (kBlock256(DT) ? 256 : 32), bytes = blockShape(DT).bytes;
  const uint8_t* row = w.data + r * rowBytes(w);
  __m256 even[G], odd[G];
  float minSum[G];
  for (int g = 0; g < G; g++) {
    even[g] = odd[g] = _mm256_setzero_ps();
    minSum[g] = 0.0f;
  }
  const auto step = [&](int64_t b, __m256 (&acc)[G]) __attribute__((always_inline)) {
    BlockSums<G> s;
    blockSums<DT, G>(row + b * bytes, x, w.cols, b, s);
    for (int g = 0; g < G; g++) {
      const float dx = x.d[g * blocks + b];
      acc[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s.dot[g]), _mm256_set1_ps(s.d * dx), acc[g]);
      if constexpr (q81) minSum[g] += s.dmin * s.minX[g];
      else if constexpr (minimums) minSum[g] += s.dmin * dx * s.minX[g];
    }
  };
  int64_t b = 0;
  if constexpr (twoChains) {
    for (; b + 2 <= blocks; b += 2) {
      step(b, even);
      step(b + 1, odd);
    }
  }
  for (; b < blocks; b++) step(b, even);
  for (int g = 0; g < G; g++) {
    const float products = twoChains ? hsum8(_mm256_add_ps(even[g], odd[g])) : hsum8(even[g]);
    out[g * ldo + r] = q81 ? products + minSum[g] : products - minSum[g];
  }
}

/**
 * int8Row for the q8_0 types (Q8_0, Q4_0, Q5_0, IQ4_NL) at G >= 3 rows: the same products in the
 * same order (even blocks into one chain, odd blocks into the other, each ascending), but each
 * chain walked on its own, 64 blocks at a time, with the blocks' scale products d · d_x computed
 * 8 at a time beforehand. So G accumulators are live instead of 2G (no spills), and each block
 * and row costs one broadcast load instead of a load, a multiply and a broadcast.
 */
template <int DT, int G>
void int8RowChains(const Weight& w, int64_t r, const Int8Rows& x, float* out, int64_t ldo) {
  constexpr int64_t CHUNK = 64;  // even, so a block's chain is the parity of its index in the chunk
  const int64_t blocks = w.cols / 32, bytes = blockShape(DT).bytes;
  const uint8_t* row = w.data + r * rowBytes(w);
  __m256 chains[2][G];
  for (int g = 0; g < G; g++) chains[0][g] = chains[1][g] = _mm256_setzero_ps();
  alignas(32) float dw[CHUNK];
  alignas(32) float scale[G][CHUNK];
  for (int64_t c0 = 0; c0 < blocks; c0 += CHUNK) {
    const int64_t n = imin(CHUNK, blocks - c0);
    for (int64_t i = 0; i < n; i++) dw[i] = halfToFloat(read16(row + (c0 + i) * bytes));
    for (int g = 0; g < G; g++) {
      const float* dx = x.d + g * blocks + c0;
      int64_t i = 0;
      for (; i + 8 <= n; i += 8) _mm256_store_ps(scale[g] + i, _mm256_mul_ps(_mm256_load_ps(dw + i), _mm256_loadu_ps(dx + i)));
      for (; i < n; i++) scale[g][i] = dw[i] * dx[i];
    }
    for (int parity = 0; parity < 2; parity++) {
      __m256 acc[G];
      for (int g = 0; g < G; g++) acc[g] = chains[parity][g];
      for (int64_t i = parity; i < n; i += 2) {
        BlockSums<G> s;
        blockSums<DT, G>(row + (c0 + i) * bytes, x, w.cols, c0 + i, s);
        for (int g = 0; g < G; g++) acc[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s.dot[g]), _mm256_broadcast_ss(&scale[g][i]), acc[g]);
      }
      for (int g = 0; g < G; g++) chains[parity][g] = acc[g];
    }
  }
  for (int g = 0; g < G; g++) out[g * ldo + r] = hsum8(_mm256_add_ps(chains[0][g], chains[1][g]));
}

/** One pass of G activation rows over weight row r: the q8_0 types' chains walked one at a time from 3 rows on, else int8Row. */
template <int DT, int G>
__attribute__((always_inline)) inline void rowPass(const Weight& w, int64_t r, const Int8Rows& x, float* out, int64_t ldo) {
  if constexpr (twoChainTypes(DT) && G >= 3) int8RowChains<DT, G>(w, r, x, out, ldo);
  else int8Row<DT, G>(w, r, x, out, ldo);
}

struct Int8RowsJob {
  float* out;
  Int8Rows x;
  int64_t m;
  const Weight* w;
};

template <int DT>
void int8RowsAvx2(void* ctx, int64_t r0, int64_t r1, int) {
  const Int8RowsJob& j = *static_cast<const Int8RowsJob*>(ctx);
  const Weight& w = *j.w;
  const int64_t block = kBlock256(DT) ? 256 : 32;
  const int64_t sums = sumsOf32(DT) ? w.cols / 32 : w.cols / 16;
  for (int64_t r = r0; r < r1; r++) {
    for (int64_t g0 = 0; g0 < j.m; g0 += 4) {  // up to 4 activation rows per pass over the weight row (8 spilled, slower)
      const Int8Rows x{j.x.q + g0 * w.cols, j.x.d + g0 * (w.cols / block), j.x.bsums ? j.x.bsums + g0 * sums : nullptr,
                       j.x.sums ? j.x.sums + g0 * (w.cols / 32) : nullptr, j.x.offsets ? j.x.offsets + g0 * (w.cols / 32) : nullptr};
      float* out = j.out + g0 * w.rows;
      switch (imin(4, j.m - g0)) {
        case 1: rowPass<DT, 1>(w, r, x, out, w.rows); break;
        case 2: rowPass<DT, 2>(w, r, x, out, w.rows); break;
        case 3: rowPass<DT, 3>(w, r, x, out, w.rows); break;
        default: rowPass<DT, 4>(w, r, x, out, w.rows); break;
      }
    }
  }
}

/** Whether matvecInt8Avx2 takes w (with m <= SMALL_M rows of x at a time). */
inline bool int8Avx2Takes(const Weight& w) {
  if (w.rows == 0 || w.cols == 0) return false;
  if (kBlock256(w.dtype)) return w.cols % 256 == 0;
  const bool block32 = w.dtype == DT_Q8_0 || w.dtype == DT_Q4_0 || w.dtype == DT_Q5_0 || w.dtype == DT_IQ4_NL || w.dtype == DT_Q4_1 || w.dtype == DT_Q5_1;
  return block32 && w.cols % 32 == 0;
}

/** Q2_K .. Q6_K, IQ4_XS, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 or IQ4_NL weights x m <= SMALL_M rows of x, x rounded as ggml does for that type. */
void matvecInt8Avx2(float* out, const float* x, int64_t m, const Weight& w) {
  const int64_t cols = w.cols;
  const bool kQuant = kBlock256(w.dtype);
  // q (m · cols bytes), d (m · cols / 32 floats), then the q8_K or q8_1 sums, or Q4_0 / Q5_0's offsets (m · cols bytes, 32-aligned)
  int8_t* q = reinterpret_cast<int8_t*>(scratch(3, static_cast<size_t>(m * cols / 4 + m * cols / 32 + m * cols / 4 + 16)));
  float* d = reinterpret_cast<float*>(q + m * cols);
  int16_t* bsums = reinterpret_cast<int16_t*>(d + m * cols / 32);
  // the space after d holds the q8_K sums (int16, up to cols / 16 per row) or the q8_1 sums (f32, cols / 32 per row)
  float* q81Sums = w.dtype == DT_Q4_1 || w.dtype == DT_Q5_1 ? reinterpret_cast<float*>(bsums) : nullptr;
  if (kQuant) quantizeQ8KAvx2(x, m, cols, sumsOf32(w.dtype), q, d, bsums);
  else quantizeQ8_0Avx2(x, m, cols, q, d, q81Sums);
  // Q4_0 / Q5_0's offsets serve only passes of 1-2 rows: the last group of 4, when m % 4 is 1 or 2
  __m256i* offsets = nullptr;
  const int64_t tail = m % 4;
  if ((w.dtype == DT_Q4_0 || w.dtype == DT_Q5_0) && (tail == 1 || tail == 2)) {
    offsets = reinterpret_cast<__m256i*>((reinterpret_cast<uintptr_t>(d + m * cols / 32) + 31) & ~uintptr_t{31});
    const __m256i offset = _mm256_set1_epi8(w.dtype == DT_Q5_0 ? 16 : 8), ones = _mm256_set1_epi16(1);
    for (int64_t i = (m - tail) * cols / 32; i < m * cols / 32; i++)
      offsets[i] = _mm256_madd_epi16(_mm256_maddubs_epi16(offset, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * i))), ones);
  }
  Int8RowsJob j{out, Int8Rows{q, d, kQuant ? bsums : nullptr, q81Sums, offsets}, m, &w};
  RangeFn fn;
  switch (w.dtype) {
    case DT_Q4_K: fn = int8RowsAvx2<DT_Q4_K>; break;
    case DT_Q5_K: fn = int8RowsAvx2<DT_Q5_K>; break;
    case DT_Q6_K: fn = int8RowsAvx2<DT_Q6_K>; break;
    case DT_IQ4_XS: fn = int8RowsAvx2<DT_IQ4_XS>; break;
    case DT_Q2_K: fn = int8RowsAvx2<DT_Q2_K>; break;
    case DT_Q3_K: fn = int8RowsAvx2<DT_Q3_K>; break;
    case DT_Q8_0: fn = int8RowsAvx2<DT_Q8_0>; break;
    case DT_Q4_0: fn = int8RowsAvx2<DT_Q4_0>; break;
    case DT_IQ4_NL: fn = int8RowsAvx2<DT_IQ4_NL>; break;
    case DT_Q4_1: fn = int8RowsAvx2<DT_Q4_1>; break;
    case DT_Q5_1: fn = int8RowsAvx2<DT_Q5_1>; break;
    default: fn = int8RowsAvx2<DT_Q5_0>; break;
  }
  parallelStatic(w.rows, matvecGrain(w, m), fn, &j);
}

/**
 * matmul for AVX2 CPUs with int8 activations (the default, int8 mode 'prefill'): Q2_K, Q3_K,
 * Q4_K, Q5_K, Q6_K, IQ4_XS, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and IQ4_NL through the kernels above, prompts included, SMALL_M rows of x at a time (their
 * int8 copy stays in L1/L2 while the weight streams past; each further 16 rows read the weight
 * again, from L3 for a small model's matrices). A row's result does not depend on how many rows
 * share the call. Other types as matmul.
 */
void matmulInt8Avx2(float* out, const float* x, int64_t m, const Weight& w) {
  if (!int8Avx2Takes(w)) return matmul(out, x, m, w);
  for (int64_t i = 0; i < m; i += SMALL_M) matvecInt8Avx2(out + i * w.rows, x + i * w.cols, imin(SMALL_M, m - i), w);
}
