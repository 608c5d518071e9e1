// Kernels for a batched decode step of several sequences (continuous batching: src/nn/mla-batch.ts,
// src/nn/moe.ts), included by kernels_impl.h inside each SIMD level's namespace. A batched step of
// a small model costs kernel calls rather than arithmetic, so each kernel here does in one call
// what would otherwise be one call per sequence (attention) or several per expert (MoE).
namespace {

/** A per-thread work buffer (slot 0..4) of at least `floats` floats, kept apart from scratch(): the kernels called in between use that. */
float* batchBuffer(int slot, int64_t floats) {
  struct Buffers {
    float* data[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
    int64_t size[5] = {0, 0, 0, 0, 0};
    ~Buffers() {
      for (float* d : data) std::free(d);
    }
  };
  static thread_local Buffers buffers;
  if (buffers.size[slot] < floats) {
    std::free(buffers.data[slot]);
    buffers.data[slot] = static_cast<float*>(std::malloc(static_cast<size_t>(floats) * 4));
    buffers.size[slot] = floats;
  }
  return buffers.data[slot];
}

/** Rows of a batch: which cache they attend to and at which position. */
struct SegmentRow {
  const float* cache;
  int64_t pos;
};

struct SegmentsJob {
  float* out;
  const float* q;
  const SegmentRow* rows;
  const BatchAttentionArgs* p;
};

#if defined(__AVX512F__)
/** expFast on 16 lanes (the same steps). */
inline __m512 expFast16(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
  const __m512 kf = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504f), _mm512_set1_ps(12582912.0f)), _mm512_set1_ps(12582912.0f));
  const __m512 r = _mm512_fnmadd_ps(kf, _mm512_set1_ps(1.42860677e-6f), _mm512_fnmadd_ps(kf, _mm512_set1_ps(0.693145752f), x));
  __m512 pr = _mm512_set1_ps(1.0f / 5040.0f);
  pr = _mm512_fmadd_ps(pr, r, _mm512_set1_ps(1.0f / 720.0f));
  pr = _mm512_fmadd_ps(pr, r, _mm512_set1_ps(1.0f / 120.0f));
  pr = _mm512_fmadd_ps(pr, r, _mm512_set1_ps(1.0f / 24.0f));
  pr = _mm512_fmadd_ps(pr, r, _mm512_set1_ps(1.0f / 6.0f));
  pr = _mm512_fmadd_ps(pr, r, _mm512_set1_ps(0.5f));
  pr = _mm512_fmadd_ps(pr, r, _mm512_set1_ps(1.0f));
  pr = _mm512_fmadd_ps(pr, r, _mm512_set1_ps(1.0f));
  const __m512i k = _mm512_cvttps_epi32(kf);
  return _mm512_mul_ps(pr, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(k, _mm512_set1_epi32(127)), 23)));
}

/**
 * exp(x) for x = score - max <= 0 (softmax): expFast16, and exactly 0 below -87 (a masked score,
 * -inf, gives 0 as std::exp does, not expFast's floor of e^-87).
 */
inline __m512 expShifted16(__m512 x) {
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_GE_OQ), expFast16(x));
}

inline __mmask16 tailMask(int64_t n) { return static_cast<__mmask16>((1u << (n % 16)) - 1); }

/** The sums of the lanes of a[0..3], as 4 floats. */
inline __m128 sum4(const __m512 (&a)[4]) {
  // in each 128-bit lane: pairs of a0/a1 (and a2/a3) partial sums, then one partial sum per vector
  const __m512 t0 = _mm512_add_ps(_mm512_unpacklo_ps(a[0], a[1]), _mm512_unpackhi_ps(a[0], a[1]));
  const __m512 t1 = _mm512_add_ps(_mm512_unpacklo_ps(a[2], a[3]), _mm512_unpackhi_ps(a[2], a[3]));
  const __m512 u = _mm512_add_ps(_mm512_shuffle_ps(t0, t1, 0x44), _mm512_shuffle_ps(t0, t1, 0xEE));
  // u's lane l holds (a0, a1, a2, a3) partial sums over lane l: add the four lanes
  const __m512 v = _mm512_add_ps(u, _mm512_shuffle_f32x4(u, u, 0x4E));
  const __m512 w = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1));
  return _mm512_castps512_ps128(w);
}
#elif defined(__AVX2__)
/** expFast8, and exactly 0 below -87 (as expShifted16). */
inline __m256 expShifted8(__m256 x) { return _mm256_and_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_GE_OQ), expFast8(x)); }

/** Lane mask of the first n (0..8) of 8 floats, for maskload / maskstore. */
inline __m256i laneMask8(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n < 0 ? 0 : n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/** The 8 sums of the lanes of v[0..7], in order, as one vector. */
inline __m256 sum8x8(const __m256 (&v)[8]) {
  const __m256 a = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  const __m256 b = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}
#endif

/** scores[h·keys + s] = scale · q_h · key s, for every head of one query row. */
void rowScores(const float* qr, const float* cache, int64_t keys, const BatchAttentionArgs& p, float* scores) {
  const int64_t H = p.heads, dk = p.headDimK, stride = p.stride;
  const float scale = p.scale;
#if defined(__AVX512F__)
  if (dk <= 64) {  // the query's chunks stay in registers
    const __mmask16 m0 = dk >= 16 ? 0xffff : tailMask(dk), m1 = dk >= 32 ? 0xffff : (dk > 16 ? tailMask(dk) : 0);
    const __mmask16 m2 = dk >= 48 ? 0xffff : (dk > 32 ? tailMask(dk) : 0), m3 = dk >= 64 ? 0xffff : (dk > 48 ? tailMask(dk) : 0);
    int64_t h = 0;
    for (; h + 4 <= H; h += 4) {  // 4 heads per key row read, their 4 sums reduced together
      __m512 qa[4], qb[4], qc[4], qd[4];
      for (int g = 0; g < 4; g++) {
        const float* q = qr + (h + g) * dk;
        qa[g] = _mm512_maskz_loadu_ps(m0, q);
        qb[g] = _mm512_maskz_loadu_ps(m1, q + 16);
        qc[g] = _mm512_maskz_loadu_ps(m2, q + 32);
        qd[g] = _mm512_maskz_loadu_ps(m3, q + 48);
      }
      for (int64_t s = 0; s < keys; s++) {
        const float* k = cache + s * stride;
        const __m512 k0 = _mm512_maskz_loadu_ps(m0, k), k1 = _mm512_maskz_loadu_ps(m1, k + 16);
        __m512 a[4];
        for (int g = 0; g < 4; g++) a[g] = _mm512_fmadd_ps(qb[g], k1, _mm512_mul_ps(qa[g], k0));
        if (m2) {
          const __m512 k2 = _mm512_maskz_loadu_ps(m2, k + 32);
          for (int g = 0; g < 4; g++) a[g] = _mm512_fmadd_ps(qc[g], k2, a[g]);
        }
        if (m3) {
          const __m512 k3 = _mm512_maskz_loadu_ps(m3, k + 48);
          for (int g = 0; g < 4; g++) a[g] = _mm512_fmadd_ps(qd[g], k3, a[g]);
        }
        const __m128 sums = sum4(a);
        alignas(16) float lanes[4];
        _mm_store_ps(lanes, sums);
        for (int g = 0; g < 4; g++) scores[(h + g) * keys + s] = lanes[g] * scale;
      }
    }
    for (; h < H; h++) {
      const float* q = qr + h * dk;
      const __m512 q0 = _mm512_maskz_loadu_ps(m0, q), q1 = _mm512_maskz_loadu_ps(m1, q + 16);
      const __m512 q2 = _mm512_maskz_loadu_ps(m2, q + 32), q3 = _mm512_maskz_loadu_ps(m3, q + 48);
      float* out = scores + h * keys;
      for (int64_t s = 0; s < keys; s++) {
        const float* k = cache + s * stride;
        __m512 acc = _mm512_mul_ps(q0, _mm512_maskz_loadu_ps(m0, k));
        if (m1) acc = _mm512_fmadd_ps(q1, _mm512_maskz_loadu_ps(m1, k + 16), acc);
        if (m2) acc = _mm512_fmadd_ps(q2, _mm512_maskz_loadu_ps(m2, k + 32), acc);
        if (m3) acc = _mm512_fmadd_ps(q3, _mm512_maskz_loadu_ps(m3, k + 48), acc);
        out[s] = _mm512_reduce_add_ps(acc) * scale;
      }
    }
    return;
  }
#elif defined(__AVX2__)
  // 8 accumulators over the key chunks, reduced together into 8 scores; the last dk % 8 values by
  // masked loads. With dk >= 32, pairs of heads take 4 keys per pass (each key chunk loaded once
  // for both heads: 6 loads per 8 FMAs; 1.1-1.2x at 150-300 keys of MLA's 48-wide rows), the other
  // heads 8 keys (the query chunk loaded once for the 8; narrower keys lose more to the reduction
  // per 4 keys than they save). Either way a score is the same sums in the same order; keys past
  // the last multiple of 8 by dot().
  const int64_t full = dk / 8;
  const __m256i tailMask = laneMask8(dk - full * 8);
  const __m256 vScale = _mm256_set1_ps(scale);
  const int64_t blocked = keys / 8 * 8;
  int64_t h0 = 0;
  for (; dk >= 32 && h0 + 2 <= H; h0 += 2) {
    const float* q0 = qr + h0 * dk;
    const float* q1 = q0 + dk;
    float* out0 = scores + h0 * keys;
    float* out1 = out0 + keys;
    for (int64_t s = 0; s < blocked; s += 4) {
      const float* k = cache + s * stride;
      __m256 acc[8];  // head 0 keys 0..3, head 1 keys 0..3
      for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_ps();
      for (int64_t c = 0; c < full; c++) {
        const __m256 a = _mm256_loadu_ps(q0 + 8 * c), b = _mm256_loadu_ps(q1 + 8 * c);
        for (int i = 0; i < 4; i++) {
          const __m256 kv = _mm256_loadu_ps(k + i * stride + 8 * c);
          acc[i] = _mm256_fmadd_ps(a, kv, acc[i]);
          acc[4 + i] = _mm256_fmadd_ps(b, kv, acc[4 + i]);
        }
      }
      if (full * 8 < dk) {
        const __m256 a = _mm256_maskload_ps(q0 + 8 * full, tailMask), b = _mm256_maskload_ps(q1 + 8 * full, tailMask);
        for (int i = 0; i < 4; i++) {
          const __m256 kv = _mm256_maskload_ps(k + i * stride + 8 * full, tailMask);
          acc[i] = _mm256_fmadd_ps(a, kv, acc[i]);
          acc[4 + i] = _mm256_fmadd_ps(b, kv, acc[4 + i]);
        }
      }
      const __m256 sums = _mm256_mul_ps(sum8x8(acc), vScale);
      _mm_storeu_ps(out0 + s, _mm256_castps256_ps128(sums));
      _mm_storeu_ps(out1 + s, _mm256_extractf128_ps(sums, 1));
    }
    for (int64_t s = blocked; s < keys; s++) {
      out0[s] = dot(q0, cache + s * stride, dk) * scale;
      out1[s] = dot(q1, cache + s * stride, dk) * scale;
    }
  }
  for (int64_t h = h0; h < H; h++) {
    const float* q = qr + h * dk;
    float* out = scores + h * keys;
    int64_t s = 0;
    for (; s + 8 <= keys; s += 8) {
      const float* k = cache + s * stride;
      __m256 acc[8];
      for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_ps();
      for (int64_t c = 0; c < full; c++) {
        const __m256 qv = _mm256_loadu_ps(q + 8 * c);
        for (int i = 0; i < 8; i++) acc[i] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + i * stride + 8 * c), acc[i]);
      }
      if (full * 8 < dk) {
        const __m256 qv = _mm256_maskload_ps(q + 8 * full, tailMask);
        for (int i = 0; i < 8; i++) acc[i] = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k + i * stride + 8 * full, tailMask), acc[i]);
      }
      _mm256_storeu_ps(out + s, _mm256_mul_ps(sum8x8(acc), vScale));
    }
    for (; s < keys; s++) out[s] = dot(q, cache + s * stride, dk) * scale;
  }
  return;
#endif
  for (int64_t h = 0; h < H; h++)
    for (int64_t s = 0; s < keys; s++) scores[h * keys + s] = dot(qr + h * dk, cache + s * stride, dk) * scale;
}

/** sc[0 .. keys) = softmax of sc (exp by expFast). */
void softmaxRow(float* sc, int64_t keys) {
  double sum = 0;
#if defined(__AVX512F__)
  __m512 mv = _mm512_set1_ps(-INFINITY);
  int64_t s = 0;
  for (; s + 16 <= keys; s += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(sc + s));
  if (s < keys) mv = _mm512_mask_max_ps(mv, tailMask(keys - s), mv, _mm512_maskz_loadu_ps(tailMask(keys - s), sc + s));
  const float max = _mm512_reduce_max_ps(mv);
  const __m512 m = _mm512_set1_ps(max);
  __m512 total = _mm512_setzero_ps();
  for (s = 0; s + 16 <= keys; s += 16) {
    const __m512 e = expShifted16(_mm512_sub_ps(_mm512_loadu_ps(sc + s), m));
    _mm512_storeu_ps(sc + s, e);
    total = _mm512_add_ps(total, e);
  }
  if (s < keys) {
    const __mmask16 tail = tailMask(keys - s);
    const __m512 e = expShifted16(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, sc + s), m));
    _mm512_mask_storeu_ps(sc + s, tail, e);
    total = _mm512_add_ps(total, _mm512_maskz_mov_ps(tail, e));
  }
  sum = _mm512_reduce_add_ps(total);
#elif defined(__AVX2__)
  __m256 mv = _mm256_set1_ps(-INFINITY);
  int64_t s = 0;
  for (; s + 8 <= keys; s += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(sc + s));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, mv);
  float max = lanes[0];
  for (int i = 1; i < 8; i++) max = lanes[i] > max ? lanes[i] : max;
  for (; s < keys; s++) max = sc[s] > max ? sc[s] : max;
  const __m256 m = _mm256_set1_ps(max);
  __m256 total = _mm256_setzero_ps();
  for (s = 0; s + 8 <= keys; s += 8) {
    const __m256 e = expShifted8(_mm256_sub_ps(_mm256_loadu_ps(sc + s), m));
    _mm256_storeu_ps(sc + s, e);
    total = _mm256_add_ps(total, e);
  }
  if (s < keys) {
    const __m256i tail = laneMask8(keys - s);
    const __m256 e = _mm256_and_ps(_mm256_castsi256_ps(tail), expShifted8(_mm256_sub_ps(_mm256_maskload_ps(sc + s, tail), m)));
    _mm256_maskstore_ps(sc + s, tail, e);
    total = _mm256_add_ps(total, e);
  }
  sum = hsum8(total);
#else
  float max = -INFINITY;
  for (int64_t s = 0; s < keys; s++) max = sc[s] > max ? sc[s] : max;
  for (int64_t s = 0; s < keys; s++) sum += (sc[s] = expFast(sc[s] - max));
#endif
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t s = 0; s < keys; s++) sc[s] *= inv;
}

/** out[h·dv ..] = Σ_s probs[h·keys + s] · value s, for every head of one query row. */
void rowValues(const float* probs, const float* cache, int64_t keys, const BatchAttentionArgs& p, float* out) {
  const int64_t H = p.heads, dv = p.headDimV, stride = p.stride;
#if defined(__AVX512F__)
  int64_t h0 = 0;
  if (dv <= 32) {  // 4 heads x 2 chunks of accumulators per pass: each value row read once for 4 heads
    const __mmask16 m0 = dv >= 16 ? static_cast<__mmask16>(0xffff) : tailMask(dv);
    const __mmask16 m1 = dv >= 32 ? static_cast<__mmask16>(0xffff) : (dv > 16 ? tailMask(dv) : 0);
    for (; h0 + 4 <= H; h0 += 4) {
      __m512 a0[4], a1[4];
      for (int g = 0; g < 4; g++) a0[g] = a1[g] = _mm512_setzero_ps();
      for (int64_t s = 0; s < keys; s++) {
        const float* v = cache + s * stride;
        const __m512 v0 = _mm512_maskz_loadu_ps(m0, v), v1 = _mm512_maskz_loadu_ps(m1, v + 16);
        for (int g = 0; g < 4; g++) {
          const __m512 pg = _mm512_set1_ps(probs[(h0 + g) * keys + s]);
          a0[g] = _mm512_fmadd_ps(pg, v0, a0[g]);
          a1[g] = _mm512_fmadd_ps(pg, v1, a1[g]);
        }
      }
      for (int g = 0; g < 4; g++) {
        _mm512_mask_storeu_ps(out + (h0 + g) * dv, m0, a0[g]);
        if (m1) _mm512_mask_storeu_ps(out + (h0 + g) * dv + 16, m1, a1[g]);
      }
    }
  }
  for (int64_t h = h0; h < H; h++) {
    const float* pr = probs + h * keys;
    for (int64_t c = 0; c < dv; c += 16) {
      const __mmask16 mask = dv - c >= 16 ? static_cast<__mmask16>(0xffff) : tailMask(dv - c);
      __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
      const float* v = cache + c;
      int64_t s = 0;
      for (; s + 4 <= keys; s += 4) {
        a0 = _mm512_fmadd_ps(_mm512_set1_ps(pr[s]), _mm512_maskz_loadu_ps(mask, v + s * stride), a0);
        a1 = _mm512_fmadd_ps(_mm512_set1_ps(pr[s + 1]), _mm512_maskz_loadu_ps(mask, v + (s + 1) * stride), a1);
        a2 = _mm512_fmadd_ps(_mm512_set1_ps(pr[s + 2]), _mm512_maskz_loadu_ps(mask, v + (s + 2) * stride), a2);
        a3 = _mm512_fmadd_ps(_mm512_set1_ps(pr[s + 3]), _mm512_maskz_loadu_ps(mask, v + (s + 3) * stride), a3);
      }
      for (; s < keys; s++) a0 = _mm512_fmadd_ps(_mm512_set1_ps(pr[s]), _mm512_maskz_loadu_ps(mask, v + s * stride), a0);
      _mm512_mask_storeu_ps(out + h * dv + c, mask, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    }
  }
#elif defined(__AVX2__)
  // Two heads per pass over the value rows, 32 columns (4 vectors) at a time: 8 accumulators.
  for (int64_t h = 0; h < H; h += 2) {
    const bool two = h + 1 < H;
    const float* p0 = probs + h * keys;
    const float* p1 = two ? p0 + keys : p0;
    for (int64_t c = 0; c < dv; c += 32) {
      const int64_t width = imin(32, dv - c);
      const int chunks = static_cast<int>((width + 7) / 8);
      const __m256i lastMask = laneMask8(width - 8 * (chunks - 1));
      __m256 a0[4], a1[4];
      for (int i = 0; i < 4; i++) a0[i] = a1[i] = _mm256_setzero_ps();
      if (chunks == 4 && width == 32) {
        for (int64_t s = 0; s < keys; s++) {
          const float* v = cache + s * stride + c;
          const __m256 w0 = _mm256_set1_ps(p0[s]), w1 = _mm256_set1_ps(p1[s]);
          for (int i = 0; i < 4; i++) {
            const __m256 vv = _mm256_loadu_ps(v + 8 * i);
            a0[i] = _mm256_fmadd_ps(w0, vv, a0[i]);
            a1[i] = _mm256_fmadd_ps(w1, vv, a1[i]);
          }
        }
      } else {
        for (int64_t s = 0; s < keys; s++) {
          const float* v = cache + s * stride + c;
          const __m256 w0 = _mm256_set1_ps(p0[s]), w1 = _mm256_set1_ps(p1[s]);
          for (int i = 0; i < chunks; i++) {
            const __m256 vv = i + 1 < chunks ? _mm256_loadu_ps(v + 8 * i) : _mm256_maskload_ps(v + 8 * i, lastMask);
            a0[i] = _mm256_fmadd_ps(w0, vv, a0[i]);
            a1[i] = _mm256_fmadd_ps(w1, vv, a1[i]);
          }
        }
      }
      for (int i = 0; i < chunks; i++) {
        const __m256i mask = i + 1 < chunks ? laneMask8(8) : lastMask;
        _mm256_maskstore_ps(out + h * dv + c + 8 * i, mask, a0[i]);
        if (two) _mm256_maskstore_ps(out + (h + 1) * dv + c + 8 * i, mask, a1[i]);
      }
    }
  }
#else
  for (int64_t i = 0; i < H * dv; i++) out[i] = 0.0f;
  for (int64_t s = 0; s < keys; s++)
    for (int64_t h = 0; h < H; h++) axpyLoop(out + h * dv, probs[h * keys + s], cache + s * stride, dv);
#endif
}

/** One query row, every head: scores, softmax (exp by expFast, to ~2e-7 relative), values. */
void segmentRowTasks(void* ctx, int64_t r0, int64_t r1, int) {
  const SegmentsJob& j = *static_cast<const SegmentsJob*>(ctx);
  const BatchAttentionArgs& p = *j.p;
  for (int64_t r = r0; r < r1; r++) {
    const SegmentRow row = j.rows[r];
    const int64_t keys = row.pos + 1;
    float* scores = scratch(0, static_cast<size_t>(p.heads * keys));
    rowScores(j.q + r * p.heads * p.headDimK, row.cache, keys, p, scores);
    for (int64_t h = 0; h < p.heads; h++) softmaxRow(scores + h * keys, keys);
    rowValues(scores, row.cache, keys, p, j.out + r * p.heads * p.headDimV);
  }
}

#if defined(__AVX512F__) || defined(__AVX2__)
/** Backend softmax of rows (mlaForwardFused's attention probabilities): softmaxRow on each, 16 (AVX2: 8) lanes of expFast at a time. */
void softmaxRows(float* x, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) softmaxRow(x + r * cols, cols);
}
#endif

/**
 * Attention of the rows of several sequences, each over its own cache (MLA: one KV head; key s of
 * a sequence is cache[s·stride .. + headDimK), its value the first headDimV of the same row).
 * Segment i holds rows segs[3i] .. + segs[3i+1] at positions segs[3i+2].. (causal). One task per
 * query row (all heads), over the pool unless serial mode is on.
 */
void attentionSegments(float* out, const float* q, const float* const* caches, const int32_t* segs, int64_t segments,
                       const BatchAttentionArgs& p) {
  int64_t tokens = 0;
  for (int64_t i = 0; i < segments; i++) tokens = tokens > segs[3 * i] + segs[3 * i + 1] ? tokens : segs[3 * i] + segs[3 * i + 1];
  SegmentRow* rows = reinterpret_cast<SegmentRow*>(batchBuffer(0, tokens * static_cast<int64_t>(sizeof(SegmentRow) / 4)));
  for (int64_t i = 0; i < segments; i++)
    for (int64_t t = 0; t < segs[3 * i + 1]; t++) rows[segs[3 * i] + t] = SegmentRow{caches[i], segs[3 * i + 2] + t};
  SegmentsJob j{out, q, rows, &p};
  parallelDynamic(tokens, segmentRowTasks, &j);
}

/** Rows of the k-major panels of an n-row weight: n rounded up to a multiple of 16 (src/tensor/panels.ts). */
inline int64_t panelRows(int64_t n) { return (n + 15) / 16 * 16; }

#if defined(__AVX512F__)
/**
 * out [m, n] = x [m, k] · w^T for the few rows of a decode step or a batch, with the weight w
 * [n, k] in k-major panels of 16 rows (src/tensor/panels.ts: panel p = [k, 16], the panels one
 * after another, zero padded to panelRows(n) rows), so that each x value is broadcast against the
 * output columns, no dot product needs a horizontal sum, and a tile reads its panels front to
 * back; on the calling thread.
 *
 * A pass is R rows x P panels (16·P columns) of accumulators, R·P sums in flight: 3-8 rows take
 * 2 panels, a last group of 1 or 2 rows takes 8 or 4, so that 8 or more sums hide the FMA
 * latency. Every panel a pass reads must exist: c + 16·(P - 1) < n.
 */
template <int R, int P>
__attribute__((always_inline)) inline void kmajorTile(float* out, int64_t ldo, const float* x, int64_t k, const float* wt, int64_t c, int64_t n) {
  __m512 a[R][P];
  for (int r = 0; r < R; r++)
    for (int p = 0; p < P; p++) a[r][p] = _mm512_setzero_ps();
  const float* panel = wt + c * k;
  for (int64_t kk = 0; kk < k; kk++) {
    __m512 w[P];
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) w[p] = _mm512_loadu_ps(panel + p * 16 * k + kk * 16);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      const __m512 xv = _mm512_set1_ps(x[r * k + kk]);
#pragma GCC unroll 8
      for (int p = 0; p < P; p++) a[r][p] = _mm512_fmadd_ps(xv, w[p], a[r][p]);
    }
  }
  for (int p = 0; p < P; p++) {
    const int64_t left = n - c - 16 * p;
    const __mmask16 mask = left >= 16 ? static_cast<__mmask16>(0xffff) : left <= 0 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << left) - 1);
    for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(out + r * ldo + c + 16 * p, mask, a[r][p]);
  }
}
/** R rows over every column: P panels per pass while they all exist, then one. */
template <int R, int P>
void kmajorRows(float* out, const float* x, int64_t k, const float* wt, int64_t n) {
  int64_t c = 0;
  for (; c + 16 * (P - 1) < n; c += 16 * P) kmajorTile<R, P>(out, n, x, k, wt, c, n);
  for (; c < n; c += 16) kmajorTile<R, 1>(out, n, x, k, wt, c, n);
}
void matmulKMajor(float* out, const float* x, int64_t m, const float* wt, int64_t n, int64_t k) {
  int64_t r = 0;
  for (; r + 8 <= m; r += 8) kmajorRows<8, 2>(out + r * n, x + r * k, k, wt, n);
  switch (m - r) {
    case 1: kmajorRows<1, 8>(out + r * n, x + r * k, k, wt, n); break;
    case 2: kmajorRows<2, 4>(out + r * n, x + r * k, k, wt, n); break;
    case 3: kmajorRows<3, 2>(out + r * n, x + r * k, k, wt, n); break;
    case 4: kmajorRows<4, 2>(out + r * n, x + r * k, k, wt, n); break;
    case 5: kmajorRows<5, 2>(out + r * n, x + r * k, k, wt, n); break;
    case 6: kmajorRows<6, 2>(out + r * n, x + r * k, k, wt, n); break;
    case 7: kmajorRows<7, 2>(out + r * n, x + r * k, k, wt, n); break;
    default: break;
  }
}
void kmajorSerial(float* out, const float* x, int64_t m, const float* wt, int64_t n, int64_t k) { matmulKMajor(out, x, m, wt, n, k); }
#elif defined(__AVX2__)
/**
 * matmulKMajor on AVX2: R rows x P panels (16·P columns) of accumulators per pass, each x value
 * broadcast against the columns; the same products and order (one FMA per term, k ascending) as
 * the AVX-512 kernel. A pass keeps 2·R·P sums in flight: 8 or more hide the FMA latency, so 1 row
 * takes 4 panels, 2 rows 2, and 3-6 rows one (6 rows: 12 accumulators, 15 registers in all).
 */
template <int R, int P = 1>
__attribute__((always_inline)) inline void kmajorTile(float* out, int64_t ldo, const float* x, int64_t k, const float* wt, int64_t c, int64_t n) {
  __m256 a[R][2 * P];
  for (int r = 0; r < R; r++)
    for (int i = 0; i < 2 * P; i++) a[r][i] = _mm256_setzero_ps();
  const float* panel = wt + c * k;
  for (int64_t kk = 0; kk < k; kk++) {
    __m256 w[2 * P];
#pragma GCC unroll 4
    for (int p = 0; p < P; p++) {
      w[2 * p] = _mm256_loadu_ps(panel + p * 16 * k + kk * 16);
      w[2 * p + 1] = _mm256_loadu_ps(panel + p * 16 * k + kk * 16 + 8);
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
      const __m256 xv = _mm256_broadcast_ss(x + r * k + kk);
#pragma GCC unroll 8
      for (int i = 0; i < 2 * P; i++) a[r][i] = _mm256_fmadd_ps(xv, w[i], a[r][i]);
    }
  }
  for (int i = 0; i < 2 * P; i++) {
    const __m256i mask = laneMask8(n - c - 8 * i);
    for (int r = 0; r < R; r++) _mm256_maskstore_ps(out + r * ldo + c + 8 * i, mask, a[r][i]);
  }
}

/** Rows of a last group of R (1 or 2) over columns [c0, c1): P panels per pass while P whole panels' worth of columns start in range, then one. */
template <int R, int P>
void kmajorWide(float* out, int64_t ldo, const float* x, int64_t k, const float* wt, int64_t c0, int64_t c1, int64_t n) {
  int64_t c = c0;
  for (; c + 16 * (P - 1) < c1; c += 16 * P) kmajorTile<R, P>(out, ldo, x, k, wt, c, n);
  for (; c < c1; c += 16) kmajorTile<R, 1>(out, ldo, x, k, wt, c, n);
}

struct KMajorJob {
  float* out;
  const float* x;
  int64_t m, n, k;
  const float* wt;
};

/**
 * Column tiles [t0, t1) (16 columns each), every row: 8 rows at a time as two passes of 4, the
 * rest by kmajorTile<R>, tile by tile; a last group of 1 or 2 rows after them, over several
 * panels per pass (kmajorWide).
 */
void kmajorTiles(void* ctx, int64_t t0, int64_t t1, int) {
  const KMajorJob& j = *static_cast<const KMajorJob*>(ctx);
  const int64_t n = j.n, k = j.k;
  const int64_t end = n < 16 * t1 ? n : 16 * t1;
  const int64_t last = j.m - j.m % 8;
  const int64_t rest = j.m - last;
  for (int64_t c = 16 * t0; c < end; c += 16) {
    int64_t r = 0;
    for (; r + 8 <= j.m; r += 8) {
      kmajorTile<4>(j.out + r * n, n, j.x + r * k, k, j.wt, c, n);
      kmajorTile<4>(j.out + (r + 4) * n, n, j.x + (r + 4) * k, k, j.wt, c, n);
    }
    float* out = j.out + r * n;
    const float* x = j.x + r * k;
    switch (rest) {
      case 3: kmajorTile<3>(out, n, x, k, j.wt, c, n); break;
      case 4: kmajorTile<4>(out, n, x, k, j.wt, c, n); break;
      case 5: kmajorTile<5>(out, n, x, k, j.wt, c, n); break;
      case 6: kmajorTile<6>(out, n, x, k, j.wt, c, n); break;
      case 7:
        kmajorTile<4>(out, n, x, k, j.wt, c, n);
        kmajorTile<3>(out + 4 * n, n, x + 4 * k, k, j.wt, c, n);
        break;
      default: break;
    }
  }
  if (rest == 1) kmajorWide<1, 4>(j.out + last * n, n, j.x + last * k, k, j.wt, 16 * t0, end, n);
  if (rest == 2) kmajorWide<2, 2>(j.out + last * n, n, j.x + last * k, k, j.wt, 16 * t0, end, n);
}

/**
 * Column tiles outermost, so that a tile's weights (k x 16 floats) stay in L1 for every row
 * group. A weight of smallWorkBytes or more (the shipped model's head and dense FFN) is split
 * across the pool by column tiles: at 8 rows that took 1024 x 128 from ~56 to ~30 µs here.
 */
void matmulKMajor(float* out, const float* x, int64_t m, const float* wt, int64_t n, int64_t k) {
  KMajorJob j{out, x, m, n, k, wt};
  const int64_t tiles = panelRows(n) / 16;
  const int threads = threadCount();
  if (n * k * 4 < smallWorkBytes() || threads < 2) return kmajorTiles(&j, 0, tiles, 0);
  parallelStatic(tiles, (tiles + threads - 1) / threads, kmajorTiles, &j);
}
/** matmulKMajor on the calling thread (moeExperts' experts: small weights, one call per expert). */
void kmajorSerial(float* out, const float* x, int64_t m, const float* wt, int64_t n, int64_t k) {
  KMajorJob j{out, x, m, n, k, wt};
  kmajorTiles(&j, 0, panelRows(n) / 16, 0);
}
#else
/** The scalar level's k-major product (moeExperts): each output summed over k in order, one multiply and one add per term. */
void kmajorSerial(float* out, const float* x, int64_t m, const float* wt, int64_t n, int64_t k) {
  for (int64_t c = 0; c < n; c++) {
    const float* panel = wt + (c / 16) * 16 * k + c % 16;
    for (int64_t r = 0; r < m; r++) {
      float acc = 0.0f;
      for (int64_t kk = 0; kk < k; kk++) acc += x[r * k + kk] * panel[kk * 16];
      out[r * n + c] = acc;
    }
  }
}
#endif

/**
 * The routed experts of a MoE layer, added into out [tokens, hidden]: each token's topK experts
 * (experts/weights [tokens, topK]). The weights are k-major panels (src/tensor/panels.ts
 * writePanels), one block per expert: gateUp holds expert e's [gate; up] ([2·width, hidden]) at
 * e·hidden·panelRows(2·width), down its down ([hidden, width]) at e·width·panelRows(hidden). The tokens
 * are grouped per expert (experts in ascending order, tokens in slot order), each expert runs
 * once on its rows through kmajorSerial, and the weighted outputs are added in that order. Each
 * output row is summed over k in order whatever rows share the expert, so a token gets the same
 * bits alone as in a batch.
 */
void moeExperts(float* out, const float* x, const int32_t* experts, const float* weights, const float* gateUp, const float* down,
                const MoeExpertsArgs& p) {
  const int64_t slots = p.tokens * p.topK, hidden = p.hidden, width = p.width, E = p.experts;
  const int64_t gateUpPad = panelRows(2 * width), downPad = panelRows(hidden);
  // counting sort of the slots by expert: expert e has order[start[e] .. start[e + 1])
  int32_t* start = reinterpret_cast<int32_t*>(batchBuffer(0, 2 * E + 1 + slots));
  int32_t* filled = start + E + 1;
  int32_t* order = filled + E;
  for (int64_t e = 0; e < 2 * E + 1; e++) start[e] = 0;
  for (int64_t i = 0; i < slots; i++) start[experts[i] + 1]++;
  for (int64_t e = 0; e < E; e++) start[e + 1] += start[e];
  for (int64_t i = 0; i < slots; i++) order[start[experts[i]] + filled[experts[i]]++] = static_cast<int32_t>(i);
  float* rows = batchBuffer(1, slots * hidden);
  float* gu = batchBuffer(2, slots * 2 * width);
  float* act = batchBuffer(3, slots * width);
  float* y = batchBuffer(4, slots * hidden);
  for (int64_t e = 0; e < E; e++) {
    const int64_t first = start[e], count = start[e + 1] - first;
    if (count == 0) continue;
    for (int64_t i = 0; i < count; i++) {
      const int64_t t = order[first + i] / p.topK;
      std::memcpy(rows + i * hidden, x + t * hidden, static_cast<size_t>(hidden) * 4);
    }
    kmajorSerial(gu, rows, count, gateUp + e * hidden * gateUpPad, 2 * width, hidden);
    for (int64_t i = 0; i < count; i++) {
      const float* g = gu + i * 2 * width;
      siluMulSpan(act + i * width, g, g + width, width);
    }
    kmajorSerial(y, act, count, down + e * width * downPad, hidden, width);
    for (int64_t i = 0; i < count; i++) {
      const int64_t slot = order[first + i];
      axpyLoop(out + (slot / p.topK) * hidden, weights[slot], y + i * hidden, hidden);
    }
  }
}

BatchKernels batchTable() {
  BatchKernels t;
  t.attentionSegments = attentionSegments;
  t.moeExperts = moeExperts;
#if defined(__AVX512F__) || defined(__AVX2__)
  t.matmulKMajor = matmulKMajor;
#else
  t.matmulKMajor = nullptr;
#endif
  return t;
}

}  // namespace
