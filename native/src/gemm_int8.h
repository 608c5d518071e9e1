// AVX-512 VNNI matmul with int8 activations for prefill-shaped products (m > SMALL_M rows of x):
// out[m, rows] = x[m, cols] · Wᵀ for Q4_0, Q5_0, Q8_0, IQ4_NL, Q5_1, Q4_K, Q6_K, Q3_K, Q2_K and
// IQ4_XS weights, the way llama.cpp multiplies them.
//
//  - x is rounded to int8 once per call, exactly as ggml's CPU backend does: q = round(x · 127 / amax)
//    (nearest, ties to even) per 32 values with the scale d = amax / 127 stored in f16 (Q4_0,
//    Q5_0, Q8_0, IQ4_NL and Q5_1: ggml's q8_0; for Q5_1 with the block sums of ggml's q8_1,
//    s = f16(d · Σq) with d in f32: see q8_1Sum), or per 256 values with d in f32 (Q4_K, Q6_K, Q3_K, Q2_K and IQ4_XS:
//    ggml's q8_K). Matching
//    ggml's rounding bit for bit (the f16 scale included) makes our logits agree with llama.cpp's
//    to ~1e-3 instead of the ~0.3 nats that any other 8-bit rounding differs by. The result is then the exact product of the dequantized weights and
//    the rounded activations, up to f32 rounding (see test/tensor/int8-matmul.test.ts).
//  - Each task unpacks a panel of 32 weight rows once into unsigned bytes (Q4: 0..15, Q5_0 and
//    Q5_1: 0..31, Q6_K: 0..63, Q3_K: 0..7, Q2_K: code · scale 0..45, Q8_0: the int8 value + 128,
//    IQ4_NL and IQ4_XS: the codebook value + 128), interleaved by 4
//    columns: panel[g][row][4] holds columns 4g..4g+3 of the 32 rows, so one 64-byte load gives 16
//    rows and vpdpbusd against 4 broadcast activation bytes adds 4 products into each row's lane.
//  - The microkernel holds MR activation rows x 32 weight rows of int32 sums for one 32-column
//    block (16 for Q6_K and Q3_K), then scales them into f32 accumulators: 8 (4) vpdpbusd per
//    conversion. Q2_K's codes carry their 4-bit sub-block scale, so its f32 scale is d for every
//    32-column block.
//  - Offsets: Q4_0's "- 8" (Q5_0's "- 16", Q8_0's, IQ4_NL's and IQ4_XS's "+ 128", Q6_K's "- 32",
//    Q3_K's "- 4") is the int32 sums' starting value (-8 · (-16 ·, -128 ·, -32 ·, -4 ·) the sum of
//    the block's int8 x); Q4_K's minimums are dmin · (mins · sums of int8 x per 32) with vpdpwssd
//    on int16 pairs, Q2_K's the same per 16; Q5_1's m · s per block (q8_1Sum: ggml's f16 s = d_x · Σ x).
// Included by kernels_impl.h when __AVX512F__, after matvec_vnni.h (FRUGAL_VNNI, kScaleBytes).

constexpr int PANEL_ROWS = 32;
constexpr int INT8_MR = 6;

/** x rounded to int8, row-major [m][cols], with its scales and block sums (layout by weight type). */
struct Int8Rows {
  int8_t* q;
  float* d;        // [m][cols / scaleBlock]
  int32_t* sums;   // Q4_0, Q5_0, Q8_0, IQ4_NL, IQ4_XS: [m][cols / 32] of -8 · sum, -16 · sum, -128 · sum; Q5_1:
                   // [m][cols / 32] q8_1Sum as f32 bits; Q4_K: [m][cols / 64] int16 pairs (sum of 32, sum of next 32);
                   // Q2_K: [m][cols / 32] int16 pairs (sum of 16, sum of next 16); Q6_K, Q3_K: [m][cols / 16] of -32 · sum, -4 · sum
  int64_t cols;
  int64_t scaleBlock;  // 32 or 256
};

/** Whether x is rounded as ggml's q8_K (per 256 values, f32 scale) for this weight type; else q8_0. */
inline bool q8KType(int dtype) {
  return dtype == DT_Q4_K || dtype == DT_Q6_K || dtype == DT_Q3_K || dtype == DT_Q2_K || dtype == DT_IQ4_XS;
}

inline int64_t int8ScaleBlock(int dtype) { return q8KType(dtype) ? 256 : 32; }

/** Rows [i0, i1) of x rounded to int8 (see Int8Rows). */
FRUGAL_VNNI void roundRows(const float* x, int dtype, const Int8Rows& r, int64_t i0, int64_t i1) {
  const int64_t cols = r.cols, sb = r.scaleBlock, scales = cols / sb;
  for (int64_t i = i0; i < i1; i++) {
    for (int64_t s = 0; s < scales; s++) {
      const float* xs = x + i * cols + s * sb;
      __m512 inv;
      r.d[i * scales + s] = q8Scale(xs, sb, sb == 32, inv);  // q8_0's d in f16, q8_K's in f32
      for (int64_t c = 0; c < sb; c += 32) {
        const __m512i lo = q8Round(xs + c, inv), hi = q8Round(xs + c + 16, inv);
        int8_t* dst = r.q + i * cols + s * sb + c;
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm512_cvtsepi32_epi8(lo));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16), _mm512_cvtsepi32_epi8(hi));
        const int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(lo, hi));
        const int64_t block = (s * sb + c) / 32;
        if (dtype == DT_Q6_K || dtype == DT_Q3_K) {
          const int32_t first = _mm512_reduce_add_epi32(lo), k = dtype == DT_Q6_K ? -32 : -4;
          r.sums[i * (cols / 16) + 2 * block] = k * first;
          r.sums[i * (cols / 16) + 2 * block + 1] = k * (sum - first);
        } else if (dtype == DT_Q2_K) {  // the pair (sum of 16, sum of next 16) as int16 words
          const int32_t first = _mm512_reduce_add_epi32(lo);
          r.sums[i * (cols / 32) + block] = static_cast<int32_t>(static_cast<uint16_t>(static_cast<int16_t>(first)) |
                                                                 (static_cast<uint32_t>(static_cast<uint16_t>(static_cast<int16_t>(sum - first))) << 16));
        } else if (dtype == DT_Q5_1) {  // ggml's q8_1 s = f16(d · sum), d unrounded, as f32 bits, for the minimums
          const float ds = q8_1Sum(xs, sum);
          std::memcpy(&r.sums[i * (cols / 32) + block], &ds, 4);
        } else if (dtype != DT_Q4_K) {
          r.sums[i * (cols / 32) + block] = (dtype == DT_Q4_0 ? -8 : dtype == DT_Q5_0 ? -16 : -128) * sum;
        } else {
          uint32_t* pair = reinterpret_cast<uint32_t*>(r.sums) + i * (cols / 64) + block / 2;
          const uint32_t bits = static_cast<uint16_t>(static_cast<int16_t>(sum));
          *pair = block % 2 == 0 ? bits : (*pair | (bits << 16));
        }
      }
    }
  }
}

/** One task's unpacked weights: 32 rows (zero past the last row) over all columns. */
struct Panel {
  uint8_t* q;       // [cols / 4 rounded up to 16][32][4]
  float* scale;     // [cols / 32][32]: Q4_0 / Q5_0 / Q8_0 / IQ4_NL / Q5_1 d, Q4_K d · sc, IQ4_XS d · (ls - 32), Q2_K d;
                    // Q6_K: [cols / 16][32] d · sc, Q3_K d · (sc - 32)
  float* dmin;      // Q4_K, Q2_K: [cols / 256][32]
  int32_t* mins;    // Q4_K: [cols / 64][32] int16 pairs (mn of 2p, mn of 2p + 1); Q2_K: [cols / 32][32] int16
                    // pairs of the mins of 16; Q5_1: [cols / 32][32] the f32 minimum m
};

inline int64_t panelGroups(int64_t cols) { return (cols + 63) / 64 * 16; }

/** Bytes of scratch a panel needs (64-byte aligned parts). */
inline int64_t panelBytes(int64_t cols) {
  return panelGroups(cols) * PANEL_ROWS * 4 + (cols / 16 + cols / 256 + cols / 32 + 3) * PANEL_ROWS * 4;
}

inline Panel panelAt(uint8_t* base, int64_t cols) {
  Panel p;
  p.q = base;
  p.scale = reinterpret_cast<float*>(base + panelGroups(cols) * PANEL_ROWS * 4);
  p.dmin = p.scale + cols / 16 * PANEL_ROWS;
  p.mins = reinterpret_cast<int32_t*>(p.dmin + cols / 256 * PANEL_ROWS);
  return p;
}

/** Store 16 rows' 64-column slices (r[t]: row t's bytes in column order) as 16 interleaved groups. */
FRUGAL_VNNI inline void storeGroups(__m512i (&r)[16], uint8_t* dst) {
  __m512 f[16];
  for (int t = 0; t < 16; t++) f[t] = _mm512_castsi512_ps(r[t]);
  transpose16(f);
  for (int g = 0; g < 16; g++) _mm512_store_si512(reinterpret_cast<__m512i*>(dst + g * PANEL_ROWS * 4), _mm512_castps_si512(f[g]));
}

/**
 * Q4_0 (or Q5_0, Q5_1 with their fifth bits) as bytes 0..15 (0..31) in column order, with d (Q5_1:
 * and m in p.mins); IQ4_NL as its codebook value + 128.
 */
FRUGAL_VNNI void unpackPanelQ4_0(const Weight& w, int64_t r0, const Panel& p) {
  const int64_t blocks = w.cols / 32, stride = rowBytes(w);
  const bool q51 = w.dtype == DT_Q5_1, q5 = w.dtype == DT_Q5_0 || q51, nl = w.dtype == DT_IQ4_NL;
  const int64_t blockBytes = q51 ? 24 : q5 ? 22 : 18, quants = q51 ? 8 : q5 ? 6 : 2, highAt = q51 ? 4 : 2;
  const __m512i nibble = _mm512_set1_epi8(15), fifth = _mm512_set1_epi8(16);
  const __m512i table = _mm512_broadcast_i32x4(_mm_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, (char)129, (char)141, (char)153, (char)166, (char)181, (char)197, (char)217, (char)241));
  float* mins = reinterpret_cast<float*>(p.mins);
  for (int half = 0; half < 2; half++) {
    for (int64_t b = 0; b < blocks; b += 2) {
      const bool second = b + 1 < blocks;
      __m512i r[16];
      for (int t = 0; t < 16; t++) {
        const int64_t row = r0 + 16 * half + t;
        const int lane = 16 * half + t;
        if (row >= w.rows) {
          r[t] = _mm512_setzero_si512();
          p.scale[b * PANEL_ROWS + lane] = 0.0f;
          if (second) p.scale[(b + 1) * PANEL_ROWS + lane] = 0.0f;
          if (q51) {
            mins[b * PANEL_ROWS + lane] = 0.0f;
            if (second) mins[(b + 1) * PANEL_ROWS + lane] = 0.0f;
          }
          continue;
        }
        const uint8_t* blk = w.data + row * stride + b * blockBytes;
        const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + quants));
        const __m128i q1 = second ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + blockBytes + quants)) : _mm_setzero_si128();
        const __m256i q = _mm256_set_m128i(q1, q0);
        // [lo 0 | lo 1 | hi 0 | hi 1] -> [lo 0 | hi 0 | lo 1 | hi 1]: the column order of the two blocks.
        const __m512i z = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1), nibble);
        r[t] = _mm512_shuffle_i64x2(z, z, 0xD8);
        if (q5) {  // bit j of qh is the fifth bit of column j
          const uint64_t high = read32(blk + highAt) | (second ? static_cast<uint64_t>(read32(blk + blockBytes + highAt)) << 32 : 0);
          r[t] = _mm512_or_si512(r[t], _mm512_maskz_mov_epi8(high, fifth));
        }
        if (nl) r[t] = _mm512_shuffle_epi8(table, r[t]);
        p.scale[b * PANEL_ROWS + lane] = halfToFloat(read16(blk));
        if (second) p.scale[(b + 1) * PANEL_ROWS + lane] = halfToFloat(read16(blk + blockBytes));
        if (q51) {
          mins[b * PANEL_ROWS + lane] = halfToFloat(read16(blk + 2));
          if (second) mins[(b + 1) * PANEL_ROWS + lane] = halfToFloat(read16(blk + blockBytes + 2));
        }
      }
      storeGroups(r, p.q + (b / 2 * 16 * PANEL_ROWS + 16 * half) * 4);
    }
  }
}

/** Q8_0: each 32-value block is 8 groups; bytes stored as value + 128 (unsigned), with d. */
FRUGAL_VNNI void unpackPanelQ8_0(const Weight& w, int64_t r0, const Panel& p) {
  const int64_t blocks = w.cols / 32, stride = rowBytes(w);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int half = 0; half < 2; half++) {
    for (int64_t b = 0; b < blocks; b += 2) {
      const bool second = b + 1 < blocks;
      __m512i r[16];
      for (int t = 0; t < 16; t++) {
        const int64_t row = r0 + 16 * half + t;
        const int lane = 16 * half + t;
        if (row >= w.rows) {
          r[t] = _mm512_setzero_si512();
          p.scale[b * PANEL_ROWS + lane] = 0.0f;
          if (second) p.scale[(b + 1) * PANEL_ROWS + lane] = 0.0f;
          continue;
        }
        const uint8_t* blk = w.data + row * stride + b * 34;
        const __m256i q0 = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2)), flip);
        const __m256i q1 = second ? _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 36)), flip) : _mm256_setzero_si256();
        r[t] = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
        p.scale[b * PANEL_ROWS + lane] = halfToFloat(read16(blk));
        if (second) p.scale[(b + 1) * PANEL_ROWS + lane] = halfToFloat(read16(blk + 34));
      }
      storeGroups(r, p.q + (b / 2 * 16 * PANEL_ROWS + 16 * half) * 4);
    }
  }
}

FRUGAL_VNNI void unpackPanelQ4_K(const Weight& w, int64_t r0, const Panel& p) {
  const int64_t supers = w.cols / 256, stride = rowBytes(w);
  const __m512i nibble = _mm512_set1_epi8(15);
  for (int half = 0; half < 2; half++) {
    for (int64_t s = 0; s < supers; s++) {
      for (int t = 0; t < 16; t++) {
        const int64_t row = r0 + 16 * half + t;
        const int lane = 16 * half + t;
        alignas(16) uint8_t sm[16] = {0};
        float d = 0.0f, dmin = 0.0f;
        if (row < w.rows) {
          const uint8_t* blk = w.data + row * stride + s * 144;
          d = halfToFloat(read16(blk));
          dmin = halfToFloat(read16(blk + 2));
          kScaleBytes(blk + 4, sm);
        }
        for (int j = 0; j < 8; j++) p.scale[(s * 8 + j) * PANEL_ROWS + lane] = d * static_cast<float>(sm[j]);
        p.dmin[s * PANEL_ROWS + lane] = dmin;
        for (int j = 0; j < 4; j++) p.mins[(s * 4 + j) * PANEL_ROWS + lane] = static_cast<int32_t>(sm[8 + 2 * j] | (static_cast<uint32_t>(sm[9 + 2 * j]) << 16));
      }
      for (int c = 0; c < 4; c++) {
        __m512i r[16];
        for (int t = 0; t < 16; t++) {
          const int64_t row = r0 + 16 * half + t;
          if (row >= w.rows) {
            r[t] = _mm512_setzero_si512();
            continue;
          }
          const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.data + row * stride + s * 144 + 16 + 32 * c));
          r[t] = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(qs), _mm256_srli_epi16(qs, 4), 1), nibble);
        }
        storeGroups(r, p.q + ((s * 64 + c * 16) * PANEL_ROWS + 16 * half) * 4);
      }
    }
  }
}

/**
 * The frame of the unpackers of 256-column super-blocks (Q6_K, Q3_K, Q2_K, IQ4_XS): for each half
 * of the panel's 32 rows and each super-block, D::row decodes one weight row's super-block at blk
 * into its four 64-column code slices (column order) and writes its scales for panel lane `lane`;
 * a row past the matrix gets zero codes and D::pad zeroes its scales.
 */
template <typename D>
FRUGAL_VNNI inline void unpackSupers(const Weight& w, int64_t r0, const Panel& p, const D& dec) {
  const int64_t supers = w.cols / 256, stride = rowBytes(w);
  for (int half = 0; half < 2; half++) {
    for (int64_t s = 0; s < supers; s++) {
      __m512i r[4][16];
      for (int t = 0; t < 16; t++) {
        const int64_t row = r0 + 16 * half + t;
        const int lane = 16 * half + t;
        __m512i v[4];
        if (row < w.rows) {
          dec.row(w.data + row * stride + s * D::BYTES, s, lane, p, v);
        } else {
          for (int c = 0; c < 4; c++) v[c] = _mm512_setzero_si512();
          dec.pad(s, lane, p);
        }
        for (int c = 0; c < 4; c++) r[c][t] = v[c];
      }
      for (int c = 0; c < 4; c++) storeGroups(r[c], p.q + ((s * 64 + c * 16) * PANEL_ROWS + 16 * half) * 4);
    }
  }
}

/** Zeroes the `count` f32 scales per super-block of a padding lane. */
FRUGAL_VNNI inline void padScales(const Panel& p, int64_t s, int lane, int count) {
  for (int j = 0; j < count; j++) p.scale[(s * count + j) * PANEL_ROWS + lane] = 0.0f;
}

/** Q6_K: 6-bit values 0..63 in column order, d · (16 int8 sub-block scales) per super-block. */
struct Q6KRows {
  static constexpr int64_t BYTES = 210;
  __m256i low4, low2;
  FRUGAL_VNNI Q6KRows() : low4(_mm256_set1_epi8(15)), low2(_mm256_set1_epi8(3)) {}
  FRUGAL_VNNI void pad(int64_t s, int lane, const Panel& p) const { padScales(p, s, lane, 16); }
  FRUGAL_VNNI void row(const uint8_t* blk, int64_t s, int lane, const Panel& p, __m512i (&v)[4]) const {
    const float d = halfToFloat(read16(blk + 208));
    const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192);
    for (int j = 0; j < 16; j++) p.scale[(s * 16 + j) * PANEL_ROWS + lane] = d * static_cast<float>(sc[j]);
    for (int h = 0; h < 2; h++) {
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * h));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * h + 32));
      const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h));
      const __m256i v0 = _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_slli_epi16(_mm256_and_si256(hb, low2), 4));
      const __m256i v1 = _mm256_or_si256(_mm256_and_si256(l1, low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), low2), 4));
      const __m256i v2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), low2), 4));
      const __m256i v3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), low2), 4));
      v[2 * h] = _mm512_inserti64x4(_mm512_castsi256_si512(v0), v1, 1);
      v[2 * h + 1] = _mm512_inserti64x4(_mm512_castsi256_si512(v2), v3, 1);
    }
  }
};

/** Q3_K: codes c = 2 low bits | 4 · hmask bit (0..7, standing for c - 4) in column order, d · (scale - 32) per 16 columns. */
struct Q3KRows {
  static constexpr int64_t BYTES = 110;
  __m256i three, one;
  FRUGAL_VNNI Q3KRows() : three(_mm256_set1_epi8(3)), one(_mm256_set1_epi8(1)) {}
  FRUGAL_VNNI void pad(int64_t s, int lane, const Panel& p) const { padScales(p, s, lane, 16); }
  FRUGAL_VNNI void row(const uint8_t* blk, int64_t s, int lane, const Panel& p, __m512i (&v)[4]) const {
    const float d = halfToFloat(read16(blk + 108));
    // The 16 6-bit scales (as matvec_vnni.h's kLowRowInt8): low 4 bits from the nibbles of bytes
    // 0..7, high 2 bits of scale j from bits 2 (j / 4) of byte 8 + j % 4.
    const __m128i l8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 96)), n4 = _mm_set1_epi8(15);
    const __m128i lowBits = _mm_unpacklo_epi64(_mm_and_si128(l8, n4), _mm_and_si128(_mm_srli_epi16(l8, 4), n4));
    const __m128i tb = _mm_set1_epi32(static_cast<int>(read32(blk + 104)));
    const __m128i highBits = _mm_and_si128(_mm_slli_epi32(_mm_srlv_epi32(tb, _mm_setr_epi32(0, 2, 4, 6)), 4), _mm_set1_epi8(0x30));
    alignas(16) int8_t sc[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(sc), _mm_sub_epi8(_mm_or_si128(lowBits, highBits), _mm_set1_epi8(32)));
    for (int j = 0; j < 16; j++) p.scale[(s * 16 + j) * PANEL_ROWS + lane] = d * static_cast<float>(sc[j]);
    const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk));
    for (int k = 0; k < 4; k++) {  // columns 64k.. 64k + 63: 128n + 32j + l for n = k / 2, j = 2 (k % 2) + u
      const int n = k / 2;
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 + 32 * n));
      __m256i h[2];
      for (int u = 0; u < 2; u++) {
        const int j = 2 * (k % 2) + u;
        const __m256i low = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j)), three);
        const __m256i high = _mm256_and_si256(_mm256_srl_epi16(hm, _mm_cvtsi32_si128(4 * n + j)), one);
        h[u] = _mm256_or_si256(low, _mm256_slli_epi16(high, 2));
      }
      v[k] = _mm512_inserti64x4(_mm512_castsi256_si512(h[0]), h[1], 1);
    }
  }
};

/**
 * Q2_K: code · (scale & 15) (0..45) in column order, so that one f32 scale d per super-block
 * serves all 256 columns (p.scale holds d for each of its 8 32-column blocks); the minimums
 * (scale >> 4) of each 16 as int16 pairs against the sums of 16 int8 x, times dmin.
 */
struct Q2KRows {
  static constexpr int64_t BYTES = 84;
  __m256i three;
  __m512i lanes[4];  // byte index 4k + L throughout 128-bit lane L
  __m512i oneBit, twoBit;
  FRUGAL_VNNI Q2KRows() : three(_mm256_set1_epi8(3)), oneBit(_mm512_set1_epi8(1)), twoBit(_mm512_set1_epi8(2)) {
    const long long b1 = 0x0101010101010101LL;
    for (int k = 0; k < 4; k++) lanes[k] = _mm512_set_epi64(b1 * (4 * k + 3), b1 * (4 * k + 3), b1 * (4 * k + 2), b1 * (4 * k + 2), b1 * (4 * k + 1), b1 * (4 * k + 1), b1 * (4 * k), b1 * (4 * k));
  }
  FRUGAL_VNNI void pad(int64_t s, int lane, const Panel& p) const {
    padScales(p, s, lane, 8);
    for (int j = 0; j < 8; j++) p.mins[(s * 8 + j) * PANEL_ROWS + lane] = 0;
    p.dmin[s * PANEL_ROWS + lane] = 0.0f;
  }
  FRUGAL_VNNI void row(const uint8_t* blk, int64_t s, int lane, const Panel& p, __m512i (&v)[4]) const {
    const float d = halfToFloat(read16(blk + 80));
    for (int j = 0; j < 8; j++) p.scale[(s * 8 + j) * PANEL_ROWS + lane] = d;
    p.dmin[s * PANEL_ROWS + lane] = halfToFloat(read16(blk + 82));
    for (int j = 0; j < 8; j++) p.mins[(s * 8 + j) * PANEL_ROWS + lane] = static_cast<int32_t>((blk[2 * j] >> 4) | (static_cast<uint32_t>(blk[2 * j + 1] >> 4) << 16));
    const __m512i sc = _mm512_broadcast_i32x4(_mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)), _mm_set1_epi8(15)));
    for (int k = 0; k < 4; k++) {  // columns 64k.. 64k + 63 (as Q3_K); 128-bit lane L is sub-block 4k + L
      const int n = k / 2;
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * n));
      const int j0 = 2 * (k % 2);
      const __m256i v0 = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j0)), three);
      const __m256i v1 = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j0 + 2)), three);
      const __m512i codes = _mm512_inserti64x4(_mm512_castsi256_si512(v0), v1, 1);
      const __m512i scv = _mm512_shuffle_epi8(sc, lanes[k]);
      __m512i x = _mm512_maskz_mov_epi8(_mm512_test_epi8_mask(codes, oneBit), scv);
      x = _mm512_mask_add_epi8(x, _mm512_test_epi8_mask(codes, twoBit), x, _mm512_add_epi8(scv, scv));
      v[k] = x;
    }
  }
};

/** IQ4_XS: codebook value + 128 in column order (each 32-column sub-block's 16 bytes as Q4_0's), d · (ls - 32) per 32. */
struct IQ4XSRows {
  static constexpr int64_t BYTES = 136;
  __m512i nibble, table;
  FRUGAL_VNNI IQ4XSRows()
      : nibble(_mm512_set1_epi8(15)),
        table(_mm512_broadcast_i32x4(_mm_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, (char)129, (char)141, (char)153, (char)166, (char)181, (char)197, (char)217, (char)241))) {}
  FRUGAL_VNNI void pad(int64_t s, int lane, const Panel& p) const { padScales(p, s, lane, 8); }
  FRUGAL_VNNI void row(const uint8_t* blk, int64_t s, int lane, const Panel& p, __m512i (&v)[4]) const {
    const float d = halfToFloat(read16(blk));
    const uint32_t high = read16(blk + 2);
    for (int j = 0; j < 8; j++) {
      const int ls = ((blk[4 + j / 2] >> (4 * (j % 2))) & 15) | (((high >> (2 * j)) & 3) << 4);
      p.scale[(s * 8 + j) * PANEL_ROWS + lane] = d * static_cast<float>(ls - 32);
    }
    for (int c = 0; c < 4; c++) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 8 + 32 * c));
      const __m512i z = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1), nibble);
      v[c] = _mm512_shuffle_epi8(table, _mm512_shuffle_i64x2(z, z, 0xD8));
    }
  }
};

inline __m512i broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

/** int32 sums of one 32-column block (8 groups of 4) for MR activation rows x 32 weight rows. */
template <int MR>
FRUGAL_VNNI inline void blockDots(__m512i (&acc)[MR][2], const uint8_t* pw, const int8_t* xq, int64_t cols) {
  for (int g = 0; g < 8; g++) {
    const __m512i b0 = _mm512_load_si512(reinterpret_cast<const __m512i*>(pw + g * 128));
    const __m512i b1 = _mm512_load_si512(reinterpret_cast<const __m512i*>(pw + g * 128 + 64));
    for (int i = 0; i < MR; i++) {
      const __m512i a = broadcast4(xq + i * cols + 4 * g);
      acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], b0, a);
      acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], b1, a);
    }
  }
}

/** Stores MR rows of a tile's 32 output columns (the first n of them) at out, rows ldo apart. */
template <int MR>
FRUGAL_VNNI void storeTile(const __m512 (&f)[MR][2], float* out, int64_t ldo, int n) {
  const __mmask16 k0 = static_cast<__mmask16>(n >= 16 ? 0xffff : (1u << n) - 1);
  const __mmask16 k1 = static_cast<__mmask16>(n >= 32 ? 0xffff : n <= 16 ? 0 : (1u << (n - 16)) - 1);
  for (int i = 0; i < MR; i++) {
    _mm512_mask_storeu_ps(out + i * ldo, k0, f[i][0]);
    _mm512_mask_storeu_ps(out + i * ldo + 16, k1, f[i][1]);
  }
}

/**
 * out rows i0 .. i0 + MR, columns r0 .. r0 + n of the Q4_0 (or Q5_0, Q8_0, IQ4_NL, Q5_1; XPER = 8:
 * IQ4_XS, x as q8_K) product from panel p. XPER: 32-column blocks per activation scale. MINS (Q5_1):
 * no offset; m · s per block (q8_1Sum).
 */
template <int MR, int XPER = 1, bool MINS = false>
FRUGAL_VNNI void tileQ4_0(const Int8Rows& x, int64_t i0, const Panel& p, float* out, int64_t ldo, int n) {
  const int64_t cols = x.cols, blocks = cols / 32, xblocks = blocks / XPER;
  __m512 f[MR][2];
  for (int i = 0; i < MR; i++) f[i][0] = f[i][1] = _mm512_setzero_ps();
  const int8_t* xq = x.q + i0 * cols;
  const int32_t* sums = x.sums + i0 * blocks;
  const float* xd = x.d + i0 * xblocks;
  for (int64_t b = 0; b < blocks; b++) {
    __m512i acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = MINS ? _mm512_setzero_si512() : _mm512_set1_epi32(sums[i * blocks + b]);
    blockDots<MR>(acc, p.q + b * 8 * PANEL_ROWS * 4, xq + 32 * b, cols);
    const __m512 d0 = _mm512_load_ps(p.scale + b * PANEL_ROWS), d1 = _mm512_load_ps(p.scale + b * PANEL_ROWS + 16);
    for (int i = 0; i < MR; i++) {
      const __m512 s = _mm512_set1_ps(xd[i * xblocks + b / XPER]);
      f[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i][0]), _mm512_mul_ps(d0, s), f[i][0]);
      f[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i][1]), _mm512_mul_ps(d1, s), f[i][1]);
    }
    if constexpr (MINS) {
      const float* mins = reinterpret_cast<const float*>(p.mins);
      const __m512 m0 = _mm512_load_ps(mins + b * PANEL_ROWS), m1 = _mm512_load_ps(mins + b * PANEL_ROWS + 16);
      for (int i = 0; i < MR; i++) {
        float xs;
        std::memcpy(&xs, &sums[i * blocks + b], 4);
        const __m512 s = _mm512_set1_ps(xs);
        f[i][0] = _mm512_fmadd_ps(m0, s, f[i][0]);
        f[i][1] = _mm512_fmadd_ps(m1, s, f[i][1]);
      }
    }
  }
  storeTile<MR>(f, out + i0 * ldo, ldo, n);
}

/**
 * As tileQ4_0 for Q4_K: per super-block of 256 columns one activation scale, 8 weight sub-block
 * scales, PAIRS = 4 pairs of minimums (of 32 columns each). Q2_K: PAIRS = 8 (minimums of 16).
 */
template <int MR, int PAIRS = 4>
FRUGAL_VNNI void tileQ4_K(const Int8Rows& x, int64_t i0, const Panel& p, float* out, int64_t ldo, int n) {
  const int64_t cols = x.cols, supers = cols / 256, pairs = cols / 256 * PAIRS;
  __m512 f[MR][2];
  for (int i = 0; i < MR; i++) f[i][0] = f[i][1] = _mm512_setzero_ps();
  const int8_t* xq = x.q + i0 * cols;
  const int32_t* sums = x.sums + i0 * pairs;
  const float* xd = x.d + i0 * supers;
  for (int64_t s = 0; s < supers; s++) {
    __m512 xs[MR];
    for (int i = 0; i < MR; i++) xs[i] = _mm512_set1_ps(xd[i * supers + s]);
    for (int j = 0; j < 8; j++) {
      const int64_t b = s * 8 + j;
      __m512i acc[MR][2];
      for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
      blockDots<MR>(acc, p.q + b * 8 * PANEL_ROWS * 4, xq + 32 * b, cols);
      const __m512 d0 = _mm512_load_ps(p.scale + b * PANEL_ROWS), d1 = _mm512_load_ps(p.scale + b * PANEL_ROWS + 16);
      for (int i = 0; i < MR; i++) {
        f[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i][0]), _mm512_mul_ps(d0, xs[i]), f[i][0]);
        f[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i][1]), _mm512_mul_ps(d1, xs[i]), f[i][1]);
      }
    }
    __m512i acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
    for (int j = 0; j < PAIRS; j++) {
      const __m512i mn0 = _mm512_load_si512(reinterpret_cast<const __m512i*>(p.mins + (s * PAIRS + j) * PANEL_ROWS));
      const __m512i mn1 = _mm512_load_si512(reinterpret_cast<const __m512i*>(p.mins + (s * PAIRS + j) * PANEL_ROWS + 16));
      for (int i = 0; i < MR; i++) {
        const __m512i a = _mm512_set1_epi32(sums[i * pairs + s * PAIRS + j]);
        acc[i][0] = _mm512_dpwssd_epi32(acc[i][0], mn0, a);
        acc[i][1] = _mm512_dpwssd_epi32(acc[i][1], mn1, a);
      }
    }
    const __m512 m0 = _mm512_load_ps(p.dmin + s * PANEL_ROWS), m1 = _mm512_load_ps(p.dmin + s * PANEL_ROWS + 16);
    for (int i = 0; i < MR; i++) {
      f[i][0] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(acc[i][0]), _mm512_mul_ps(m0, xs[i]), f[i][0]);
      f[i][1] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(acc[i][1]), _mm512_mul_ps(m1, xs[i]), f[i][1]);
    }
  }
  storeTile<MR>(f, out + i0 * ldo, ldo, n);
}

/** As tileQ4_K for Q6_K: 16 sub-blocks of 16 columns per super-block, offset -32 in the sums (Q3_K: -4). */
template <int MR>
FRUGAL_VNNI void tileQ6_K(const Int8Rows& x, int64_t i0, const Panel& p, float* out, int64_t ldo, int n) {
  const int64_t cols = x.cols, supers = cols / 256, subs = cols / 16;
  __m512 f[MR][2];
  for (int i = 0; i < MR; i++) f[i][0] = f[i][1] = _mm512_setzero_ps();
  const int8_t* xq = x.q + i0 * cols;
  const int32_t* sums = x.sums + i0 * subs;
  const float* xd = x.d + i0 * supers;
  for (int64_t s = 0; s < supers; s++) {
    __m512 xs[MR];
    for (int i = 0; i < MR; i++) xs[i] = _mm512_set1_ps(xd[i * supers + s]);
    for (int j = 0; j < 16; j++) {
      const int64_t b = s * 16 + j;
      __m512i acc[MR][2];
      for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_set1_epi32(sums[i * subs + b]);
      const uint8_t* pw = p.q + b * 4 * PANEL_ROWS * 4;
      for (int g = 0; g < 4; g++) {
        const __m512i b0 = _mm512_load_si512(reinterpret_cast<const __m512i*>(pw + g * 128));
        const __m512i b1 = _mm512_load_si512(reinterpret_cast<const __m512i*>(pw + g * 128 + 64));
        for (int i = 0; i < MR; i++) {
          const __m512i a = broadcast4(xq + i * cols + 16 * b + 4 * g);
          acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], b0, a);
          acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], b1, a);
        }
      }
      const __m512 d0 = _mm512_load_ps(p.scale + b * PANEL_ROWS), d1 = _mm512_load_ps(p.scale + b * PANEL_ROWS + 16);
      for (int i = 0; i < MR; i++) {
        f[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i][0]), _mm512_mul_ps(d0, xs[i]), f[i][0]);
        f[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i][1]), _mm512_mul_ps(d1, xs[i]), f[i][1]);
      }
    }
  }
  storeTile<MR>(f, out + i0 * ldo, ldo, n);
}

template <int MR>
FRUGAL_VNNI void tileInt8(int dtype, const Int8Rows& x, int64_t i0, const Panel& p, float* out, int64_t ldo, int n) {
  if (dtype == DT_Q4_K) tileQ4_K<MR>(x, i0, p, out, ldo, n);
  else if (dtype == DT_Q2_K) tileQ4_K<MR, 8>(x, i0, p, out, ldo, n);
  else if (dtype == DT_Q6_K || dtype == DT_Q3_K) tileQ6_K<MR>(x, i0, p, out, ldo, n);
  else if (dtype == DT_IQ4_XS) tileQ4_0<MR, 8>(x, i0, p, out, ldo, n);
  else if (dtype == DT_Q5_1) tileQ4_0<MR, 1, true>(x, i0, p, out, ldo, n);
  else tileQ4_0<MR>(x, i0, p, out, ldo, n);
}

struct Int8GemmJob {
  float* out;
  const float* x;
  int64_t m;
  const Weight* w;
  Int8Rows rows;
};

void roundRowsRange(void* ctx, int64_t i0, int64_t i1, int) {
  const Int8GemmJob& j = *static_cast<const Int8GemmJob*>(ctx);
  roundRows(j.x, j.w->dtype, j.rows, i0, i1);
}

FRUGAL_VNNI void int8Panels(void* ctx, int64_t t0, int64_t t1, int) {
  const Int8GemmJob& j = *static_cast<const Int8GemmJob*>(ctx);
  const Weight& w = *j.w;
  const Panel p = panelAt(reinterpret_cast<uint8_t*>(scratch(3, static_cast<size_t>(panelBytes(w.cols) / 4 + 16))), w.cols);
  for (int64_t t = t0; t < t1; t++) {
    const int64_t r0 = t * PANEL_ROWS;
    const int n = static_cast<int>(imin(PANEL_ROWS, w.rows - r0));
    if (w.dtype == DT_Q4_0 || w.dtype == DT_Q5_0 || w.dtype == DT_IQ4_NL || w.dtype == DT_Q5_1) unpackPanelQ4_0(w, r0, p);
    else if (w.dtype == DT_Q8_0) unpackPanelQ8_0(w, r0, p);
    else if (w.dtype == DT_Q6_K) unpackSupers(w, r0, p, Q6KRows());
    else if (w.dtype == DT_Q3_K) unpackSupers(w, r0, p, Q3KRows());
    else if (w.dtype == DT_Q2_K) unpackSupers(w, r0, p, Q2KRows());
    else if (w.dtype == DT_IQ4_XS) unpackSupers(w, r0, p, IQ4XSRows());
    else unpackPanelQ4_K(w, r0, p);
    float* out = j.out + r0;
    int64_t i = 0;
    for (; i + INT8_MR <= j.m; i += INT8_MR) tileInt8<INT8_MR>(w.dtype, j.rows, i, p, out, w.rows, n);
    switch (j.m - i) {
      case 5: tileInt8<5>(w.dtype, j.rows, i, p, out, w.rows, n); break;
      case 4: tileInt8<4>(w.dtype, j.rows, i, p, out, w.rows, n); break;
      case 3: tileInt8<3>(w.dtype, j.rows, i, p, out, w.rows, n); break;
      case 2: tileInt8<2>(w.dtype, j.rows, i, p, out, w.rows, n); break;
      case 1: tileInt8<1>(w.dtype, j.rows, i, p, out, w.rows, n); break;
      default: break;
    }
  }
}

/** Whether gemmInt8 handles this weight type. */
inline bool int8GemmType(int dtype) {
  return dtype == DT_Q4_0 || dtype == DT_Q5_0 || dtype == DT_Q8_0 || dtype == DT_Q4_K || dtype == DT_Q6_K || dtype == DT_Q3_K ||
         dtype == DT_Q2_K || dtype == DT_IQ4_XS || dtype == DT_IQ4_NL || dtype == DT_Q5_1;
}

/** out[m, rows] = round8(x) · Wᵀ for the int8GemmType weights (rows, cols > 0). */
void gemmInt8(float* out, const float* x, int64_t m, const Weight& w) {
  const int64_t cols = w.cols, sb = int8ScaleBlock(w.dtype);
  const int64_t qBytes = (m * cols + 63) / 64 * 64;
  const int64_t dCount = (m * (cols / sb) + 15) / 16 * 16;
  const int64_t sumCount = m * (cols / 16);
  uint8_t* base = reinterpret_cast<uint8_t*>(scratch(2, static_cast<size_t>(qBytes / 4 + dCount + sumCount + 16)));
  Int8Rows rows{reinterpret_cast<int8_t*>(base), reinterpret_cast<float*>(base + qBytes), nullptr, cols, sb};
  rows.sums = reinterpret_cast<int32_t*>(rows.d + dCount);
  Int8GemmJob j{out, x, m, &w, rows};
  parallelStatic(m, imin(m, 1 + 262144 / cols), roundRowsRange, &j);
  parallelDynamic((w.rows + PANEL_ROWS - 1) / PANEL_ROWS, int8Panels, &j);
}
