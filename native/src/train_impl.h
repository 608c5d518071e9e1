// The autograd (training) kernels, included by kernels_impl.h inside each SIMD level's namespace,
// so the loops are vectorized for that level and attention can call the level's serial GEMM.
// Each mirrors a TypeScript kernel of src/autograd (same arguments and accumulation: backward
// kernels add into gradients; null gradients are skipped) with float32 storage and float64 sums
// where the TypeScript sums in float64. Rows (or heads) are split across the pool; small inputs
// stay on the calling thread (the grain keeps each range at >= ~16k elements).
namespace {

constexpr int64_t TRAIN_GRAIN_ELEMENTS = 16384;

inline int64_t rowGrain(int64_t cols) { return 1 + TRAIN_GRAIN_ELEMENTS / (cols + 1); }

void trainStatic(int64_t n, int64_t grain, RangeFn fn, void* ctx) { parallelStaticShared(n, grain, fn, ctx); }

void trainDynamic(int64_t n, RangeFn fn, void* ctx) { parallelDynamicShared(n, fn, ctx); }

inline float bitsAsFloat(int32_t i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

inline int32_t floatAsBits(float f) {
  int32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}

/**
 * e^x in float32 within ~2 ulp (Cephes expf: x = n·ln2 + r, |r| <= ln2/2, degree-6 polynomial),
 * branch-free so that loops over it vectorize for the level's SIMD width (std::exp does not).
 * x is clamped to [-87, 88] (results 1.6e-38 .. 1.7e38; e^-87 stands in for the denormals and 0).
 */
inline float expApprox(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float shifter = 12582912.0f;  // 1.5 · 2^23: adding it rounds to an integer in the low bits
  const float t = x * 1.44269504088896341f + shifter;
  const float n = t - shifter;
  const int32_t ni = floatAsBits(t) - floatAsBits(shifter);
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  return y * bitsAsFloat((ni + 127) << 23);
}

// Row reductions in LANES independent partial results, so that they vectorize without
// reassociation flags (float64 lanes where the TypeScript sums in float64).
constexpr int LANES = 16;

inline float rowMax(const float* __restrict x, int64_t n) {
  float m[LANES];
  for (int l = 0; l < LANES; l++) m[l] = -INFINITY;
  int64_t c = 0;
  for (; c + LANES <= n; c += LANES)
    for (int l = 0; l < LANES; l++) m[l] = x[c + l] > m[l] ? x[c + l] : m[l];
  float r = -INFINITY;
  for (int l = 0; l < LANES; l++) r = m[l] > r ? m[l] : r;
  for (; c < n; c++) r = x[c] > r ? x[c] : r;
  return r;
}

/** Σ e^(x − shift), writing each e^(x − shift) to out (which may be x itself). */
inline double expSum(const float* x, int64_t n, float shift, float* out) {
  double acc[LANES] = {0};
  int64_t c = 0;
  for (; c + LANES <= n; c += LANES) {
    float e[LANES];
    for (int l = 0; l < LANES; l++) e[l] = expApprox(x[c + l] - shift);
    for (int l = 0; l < LANES; l++) {
      out[c + l] = e[l];
      acc[l] += e[l];
    }
  }
  double total = 0;
  for (int l = 0; l < LANES; l++) total += acc[l];
  for (; c < n; c++) {
    out[c] = expApprox(x[c] - shift);
    total += out[c];
  }
  return total;
}

/** Σ e^(x − shift) without storing the terms. */
inline double expSumOnly(const float* __restrict x, int64_t n, float shift) {
  double acc[LANES] = {0};
  int64_t c = 0;
  for (; c + LANES <= n; c += LANES) {
    float e[LANES];
    for (int l = 0; l < LANES; l++) e[l] = expApprox(x[c + l] - shift);
    for (int l = 0; l < LANES; l++) acc[l] += e[l];
  }
  double total = 0;
  for (int l = 0; l < LANES; l++) total += acc[l];
  for (; c < n; c++) total += expApprox(x[c] - shift);
  return total;
}

/** Σ a · b in float64. */
inline double dotDouble(const float* __restrict a, const float* __restrict b, int64_t n) {
  double acc[LANES] = {0};
  int64_t c = 0;
  for (; c + LANES <= n; c += LANES)
    for (int l = 0; l < LANES; l++) acc[l] += static_cast<double>(a[c + l]) * b[c + l];
  double total = 0;
  for (int l = 0; l < LANES; l++) total += acc[l];
  for (; c < n; c++) total += static_cast<double>(a[c]) * b[c];
  return total;
}

/** 1 / (1 + e^-v), from e^-|v| so that it never overflows (branch-free, vectorizes). */
inline float sigmoidOf(float v) {
  const float e = expApprox(v < 0.0f ? v : -v);
  const float inv = 1.0f / (1.0f + e);
  return v >= 0.0f ? inv : e * inv;
}

// ---------------------------------------------------------------------------------------------
// Cross-entropy (fused log-softmax): forward keeps each row's log-sum-exp.

struct CrossEntropyJob {
  double* lse;
  float* dx;
  double g;
  const float* x;
  const int32_t* targets;
  int64_t vocab;
  int32_t ignoreIndex;
};

void rowLogSumExpRange(void* ctx, int64_t r0, int64_t r1, int) {
  const CrossEntropyJob& j = *static_cast<const CrossEntropyJob*>(ctx);
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = j.x + r * j.vocab;
    const float max = rowMax(xr, j.vocab);
    const double total = expSumOnly(xr, j.vocab, max);
    j.lse[r] = static_cast<double>(max) + std::log(total);
  }
}

void crossEntropyForward(double* lse, const float* x, const int32_t* targets, int64_t rows, int64_t vocab,
                         int32_t ignoreIndex, double* total, int64_t* valid) {
  CrossEntropyJob j{lse, nullptr, 0, x, targets, vocab, ignoreIndex};
  trainStatic(rows, rowGrain(vocab), rowLogSumExpRange, &j);
  double sum = 0;
  int64_t count = 0;
  for (int64_t r = 0; r < rows; r++) {
    if (targets[r] == ignoreIndex) continue;
    sum += lse[r] - static_cast<double>(x[r * vocab + targets[r]]);
    count++;
  }
  *total = sum;
  *valid = count;
}

void crossEntropyBackwardRange(void* ctx, int64_t r0, int64_t r1, int) {
  const CrossEntropyJob& j = *static_cast<const CrossEntropyJob*>(ctx);
  const float g = static_cast<float>(j.g);
  for (int64_t r = r0; r < r1; r++) {
    const int32_t t = j.targets[r];
    if (t == j.ignoreIndex) continue;
    const float* __restrict xr = j.x + r * j.vocab;
    float* __restrict d = j.dx + r * j.vocab;
    const float l = static_cast<float>(j.lse[r]);
    const int64_t vocab = j.vocab;
    for (int64_t c = 0; c < vocab; c++) d[c] += g * expApprox(xr[c] - l);
    d[t] -= g;
  }
}

void crossEntropyBackward(float* dx, double g, const float* x, const double* lse, const int32_t* targets, int64_t rows,
                          int64_t vocab, int32_t ignoreIndex) {
  CrossEntropyJob j{const_cast<double*>(lse), dx, g, x, targets, vocab, ignoreIndex};
  trainStatic(rows, rowGrain(vocab), crossEntropyBackwardRange, &j);
}

// ---------------------------------------------------------------------------------------------
// RMSNorm: y = x · rstd · w, rstd = 1 / sqrt(mean(x²) + eps) kept per row for the backward.

struct RmsNormJob {
  float* y;
  float* rstd;
  float* dx;
  float* dw;
  const float* dy;
  const float* x;
  const float* w;
  int64_t rows;
  int64_t dim;
  double eps;
};

void rmsNormForwardRange(void* ctx, int64_t r0, int64_t r1, int) {
  const RmsNormJob& j = *static_cast<const RmsNormJob*>(ctx);
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = j.x + r * j.dim;
    float* yr = j.y + r * j.dim;
    double ss = 0;
    for (int64_t i = 0; i < j.dim; i++) ss += static_cast<double>(xr[i]) * xr[i];
    const double s = 1.0 / std::sqrt(ss / static_cast<double>(j.dim) + j.eps);
    j.rstd[r] = static_cast<float>(s);
    const float sf = static_cast<float>(s);
    if (j.w == nullptr) {
      for (int64_t i = 0; i < j.dim; i++) yr[i] = xr[i] * sf;
    } else {
      for (int64_t i = 0; i < j.dim; i++) yr[i] = xr[i] * sf * j.w[i];
    }
  }
}

void rmsNormForward(float* y, float* rstd, const float* x, const float* w, int64_t rows, int64_t dim, double eps) {
  RmsNormJob j{y, rstd, nullptr, nullptr, nullptr, x, w, rows, dim, eps};
  trainStatic(rows, rowGrain(dim), rmsNormForwardRange, &j);
}

/** dx rows: dx += rstd · (dn − n · mean(dn · n)), n = x · rstd, dn = dy · w. */
void rmsNormDxRange(void* ctx, int64_t r0, int64_t r1, int) {
  const RmsNormJob& j = *static_cast<const RmsNormJob*>(ctx);
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = j.x + r * j.dim;
    const float* g = j.dy + r * j.dim;
    float* d = j.dx + r * j.dim;
    const double sd = j.rstd[r];
    double dot = 0;
    if (j.w == nullptr) {
      for (int64_t i = 0; i < j.dim; i++) dot += static_cast<double>(g[i]) * (xr[i] * sd);
    } else {
      for (int64_t i = 0; i < j.dim; i++) dot += static_cast<double>(g[i]) * j.w[i] * (xr[i] * sd);
    }
    // In float64 like the TypeScript: dn − n · mean(dn · n) cancels to ~0 when dim is 1.
    const double meanDot = dot / static_cast<double>(j.dim);
    if (j.w == nullptr) {
      for (int64_t i = 0; i < j.dim; i++) d[i] += static_cast<float>(sd * (g[i] - xr[i] * sd * meanDot));
    } else {
      for (int64_t i = 0; i < j.dim; i++)
        d[i] += static_cast<float>(sd * (static_cast<double>(g[i]) * j.w[i] - xr[i] * sd * meanDot));
    }
  }
}

/** dw columns [i0, i1): dw[i] += Σ_rows dy · x · rstd, summed in float64 per column. */
void rmsNormDwRange(void* ctx, int64_t c0, int64_t c1, int) {
  const RmsNormJob& j = *static_cast<const RmsNormJob*>(ctx);
  constexpr int64_t BLOCK = 64;
  double acc[BLOCK];
  for (int64_t b0 = c0; b0 < c1; b0 += BLOCK) {
    const int64_t n = imin(BLOCK, c1 - b0);
    for (int64_t i = 0; i < n; i++) acc[i] = 0;
    for (int64_t r = 0; r < j.rows; r++) {
      const float* xr = j.x + r * j.dim + b0;
      const float* g = j.dy + r * j.dim + b0;
      const float s = j.rstd[r];
      for (int64_t i = 0; i < n; i++) acc[i] += static_cast<double>(g[i] * (xr[i] * s));
    }
    for (int64_t i = 0; i < n; i++) j.dw[b0 + i] += static_cast<float>(acc[i]);
  }
}

void rmsNormBackward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd,
                     int64_t rows, int64_t dim) {
  RmsNormJob j{nullptr, const_cast<float*>(rstd), dx, dw, dy, x, w, rows, dim, 0};
  if (dx != nullptr) trainStatic(rows, rowGrain(dim), rmsNormDxRange, &j);
  if (dw != nullptr) trainStatic(dim, imin(dim, 1 + TRAIN_GRAIN_ELEMENTS / (rows + 1)), rmsNormDwRange, &j);
}

// ---------------------------------------------------------------------------------------------
// SwiGLU: out = silu(gate) · up; dgate += dy · up · silu'(gate), dup += dy · silu(gate).

struct SwigluJob {
  float* out;
  float* dgate;
  float* dup;
  const float* dy;
  const float* gate;
  const float* up;
};

void swigluForwardRange(void* ctx, int64_t i0, int64_t i1, int) {
  const SwigluJob& j = *static_cast<const SwigluJob*>(ctx);
  const float* __restrict gate = j.gate;
  const float* __restrict up = j.up;
  float* __restrict out = j.out;
  for (int64_t i = i0; i < i1; i++) out[i] = gate[i] * sigmoidOf(gate[i]) * up[i];
}

void swigluBackwardRange(void* ctx, int64_t i0, int64_t i1, int) {
  const SwigluJob& j = *static_cast<const SwigluJob*>(ctx);
  const float* __restrict gate = j.gate;
  const float* __restrict up = j.up;
  const float* __restrict dy = j.dy;
  float* __restrict dgate = j.dgate;
  float* __restrict dup = j.dup;
  if (dgate != nullptr && dup != nullptr) {
    for (int64_t i = i0; i < i1; i++) {
      const float v = gate[i], s = sigmoidOf(v);
      dgate[i] += dy[i] * up[i] * s * (1.0f + v * (1.0f - s));
      dup[i] += dy[i] * v * s;
    }
  } else if (dgate != nullptr) {
    for (int64_t i = i0; i < i1; i++) {
      const float v = gate[i], s = sigmoidOf(v);
      dgate[i] += dy[i] * up[i] * s * (1.0f + v * (1.0f - s));
    }
  } else {
    for (int64_t i = i0; i < i1; i++) dup[i] += dy[i] * gate[i] * sigmoidOf(gate[i]);
  }
}

void swigluForward(float* out, const float* gate, const float* up, int64_t n) {
  SwigluJob j{out, nullptr, nullptr, nullptr, gate, up};
  trainStatic(n, TRAIN_GRAIN_ELEMENTS, swigluForwardRange, &j);
}

void swigluBackward(float* dgate, float* dup, const float* dy, const float* gate, const float* up, int64_t n) {
  if (dgate == nullptr && dup == nullptr) return;
  SwigluJob j{nullptr, dgate, dup, dy, gate, up};
  trainStatic(n, TRAIN_GRAIN_ELEMENTS, swigluBackwardRange, &j);
}

// ---------------------------------------------------------------------------------------------
// Softmax over rows: y = softmax(x); dx += y · (dy − Σ dy·y).

struct SoftmaxJob {
  float* y;
  float* dx;
  const float* dy;
  const float* x;
  int64_t cols;
};

void softmaxForwardRange(void* ctx, int64_t r0, int64_t r1, int) {
  const SoftmaxJob& j = *static_cast<const SoftmaxJob*>(ctx);
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = j.x + r * j.cols;
    float* yr = j.y + r * j.cols;
    const double inv = 1.0 / expSum(xr, j.cols, rowMax(xr, j.cols), yr);
    for (int64_t c = 0; c < j.cols; c++) yr[c] = static_cast<float>(yr[c] * inv);
  }
}

void softmaxBackwardRange(void* ctx, int64_t r0, int64_t r1, int) {
  const SoftmaxJob& j = *static_cast<const SoftmaxJob*>(ctx);
  for (int64_t r = r0; r < r1; r++) {
    const float* yr = j.y + r * j.cols;
    const float* g = j.dy + r * j.cols;
    float* d = j.dx + r * j.cols;
    const float dotf = static_cast<float>(dotDouble(g, yr, j.cols));
    for (int64_t c = 0; c < j.cols; c++) d[c] += yr[c] * (g[c] - dotf);
  }
}

void softmaxForward(float* y, const float* x, int64_t rows, int64_t cols) {
  SoftmaxJob j{y, nullptr, nullptr, x, cols};
  trainStatic(rows, rowGrain(cols), softmaxForwardRange, &j);
}

void softmaxBackward(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols) {
  SoftmaxJob j{const_cast<float*>(y), dx, dy, nullptr, cols};
  trainStatic(rows, rowGrain(cols), softmaxBackwardRange, &j);
}

// ---------------------------------------------------------------------------------------------
// RoPE: out = R(sign · angle) · x per pair with precomputed cos/sin [tokens, dim/2].

struct RopeJob {
  float* out;
  const float* x;
  const float* cos;
  const float* sin;
  int64_t heads, dim;
  bool interleaved;
  float sign;
  bool accumulate;
};

void ropeRange(void* ctx, int64_t t0, int64_t t1, int) {
  const RopeJob& j = *static_cast<const RopeJob*>(ctx);
  const int64_t half = j.dim / 2;
  const int64_t step = j.interleaved ? 2 : 1, second = j.interleaved ? 1 : half;
  for (int64_t t = t0; t < t1; t++) {
    const float* cs = j.cos + t * half;
    const float* sn = j.sin + t * half;
    for (int64_t h = 0; h < j.heads; h++) {
      const int64_t base = (t * j.heads + h) * j.dim;
      const float* x = j.x + base;
      float* o = j.out + base;
      for (int64_t i = 0; i < half; i++) {
        const float c = cs[i], s = j.sign * sn[i];
        const float a = x[i * step], b = x[i * step + second];
        if (j.accumulate) {
          o[i * step] += a * c - b * s;
          o[i * step + second] += a * s + b * c;
        } else {
          o[i * step] = a * c - b * s;
          o[i * step + second] = a * s + b * c;
        }
      }
    }
  }
}

void ropeRotate(float* out, const float* x, const float* cos, const float* sin, int64_t tokens, int64_t heads,
                int64_t dim, bool interleaved, float sign, bool accumulate) {
  RopeJob j{out, x, cos, sin, heads, dim, interleaved, sign, accumulate};
  trainStatic(tokens, rowGrain(heads * dim), ropeRange, &j);
}

// ---------------------------------------------------------------------------------------------
// Causal (or full) grouped-head attention for training; the probabilities P [B, H, T, T] are kept
// for the backward. One pool task per (batch, head) forward and per (batch, kv head) backward
// (the heads of one kv group add into the same dk/dv), each running the level's serial GEMM.

struct TrainAttentionJob {
  float* out;
  float* probs;
  float* dq;
  float* dk;
  float* dv;
  const float* dout;
  const float* q;
  const float* k;
  const float* v;
  const TrainAttentionShape* s;
};

struct HeadOffsets {
  int64_t q, k, v, o, p;
};

HeadOffsets headOffsets(const TrainAttentionShape& s, int64_t b, int64_t h) {
  const int64_t g = h / (s.heads / s.kvHeads);
  return {b * s.seq * s.heads * s.headDimK + h * s.headDimK, b * s.seq * s.kvHeads * s.headDimK + g * s.headDimK,
          b * s.seq * s.kvHeads * s.headDimV + g * s.headDimV, b * s.seq * s.heads * s.headDimV + h * s.headDimV,
          (b * s.heads + h) * s.seq * s.seq};
}

/**
 * Query rows per block: with causal masking, block [i0, i0 + rows) only needs keys [0, i0 + rows),
 * so the GEMMs skip most of the masked upper triangle (about 40% of the work at T = 256).
 */
constexpr int64_t QUERY_BLOCK = 64;

inline int64_t keysFor(const TrainAttentionShape& s, int64_t i0, int64_t rows) { return s.causal ? i0 + rows : s.seq; }

void attentionForwardTasks(void* ctx, int64_t t0, int64_t t1, int) {
  const TrainAttentionJob& j = *static_cast<const TrainAttentionJob*>(ctx);
  const TrainAttentionShape& s = *j.s;
  const int64_t T = s.seq;
  const int64_t ldq = s.heads * s.headDimK, ldk = s.kvHeads * s.headDimK;
  const int64_t ldv = s.kvHeads * s.headDimV, ldo = s.heads * s.headDimV;
  for (int64_t task = t0; task < t1; task++) {
    const HeadOffsets at = headOffsets(s, task / s.heads, task % s.heads);
    float* p = j.probs + at.p;
    for (int64_t i0 = 0; i0 < T; i0 += QUERY_BLOCK) {
      const int64_t rows = imin(QUERY_BLOCK, T - i0), keys = keysFor(s, i0, rows);
      gemmCore(false, true, rows, keys, s.headDimK, s.scale, j.q + at.q + i0 * ldq, ldq, j.k + at.k, ldk, 0.0f,
               p + i0 * T, T, false);
      for (int64_t i = i0; i < i0 + rows; i++) {
        float* row = p + i * T;
        const int64_t last = s.causal ? i : T - 1;
        const double inv = 1.0 / expSum(row, last + 1, rowMax(row, last + 1), row);
        for (int64_t c = 0; c <= last; c++) row[c] = static_cast<float>(row[c] * inv);
        for (int64_t c = last + 1; c < T; c++) row[c] = 0.0f;
      }
      gemmCore(false, false, rows, s.headDimV, keys, 1.0f, p + i0 * T, T, j.v + at.v, ldv, 0.0f, j.out + at.o + i0 * ldo,
               ldo, false);
    }
  }
}

/** Per query block: dV += Pᵀ·dO, dS = P ∘ (dO·Vᵀ − rowsum), dQ += scale·dS·K, dK += scale·dSᵀ·Q (keys < i0 + rows). */
void attentionBackwardTasks(void* ctx, int64_t t0, int64_t t1, int) {
  const TrainAttentionJob& j = *static_cast<const TrainAttentionJob*>(ctx);
  const TrainAttentionShape& s = *j.s;
  const int64_t T = s.seq, group = s.heads / s.kvHeads;
  const int64_t ldq = s.heads * s.headDimK, ldk = s.kvHeads * s.headDimK;
  const int64_t ldv = s.kvHeads * s.headDimV, ldo = s.heads * s.headDimV;
  float* dS = scratch(3, static_cast<size_t>(imin(QUERY_BLOCK, T) * T));
  for (int64_t task = t0; task < t1; task++) {
    const int64_t b = task / s.kvHeads, g = task % s.kvHeads;
    for (int64_t h = g * group; h < (g + 1) * group; h++) {
      const HeadOffsets at = headOffsets(s, b, h);
      for (int64_t i0 = 0; i0 < T; i0 += QUERY_BLOCK) {
        const int64_t rows = imin(QUERY_BLOCK, T - i0), keys = keysFor(s, i0, rows);
        const float* p = j.probs + at.p + i0 * T;
        const float* dO = j.dout + at.o + i0 * ldo;
        if (j.dv != nullptr) gemmCore(true, false, keys, s.headDimV, rows, 1.0f, p, T, dO, ldo, 1.0f, j.dv + at.v, ldv, false);
        if (j.dq == nullptr && j.dk == nullptr) continue;
        gemmCore(false, true, rows, keys, s.headDimV, 1.0f, dO, ldo, j.v + at.v, ldv, 0.0f, dS, T, false);
        for (int64_t i = 0; i < rows; i++) {
          float* row = dS + i * T;
          const float* pr = p + i * T;
          const float dotf = static_cast<float>(dotDouble(row, pr, keys));
          for (int64_t c = 0; c < keys; c++) row[c] = pr[c] * (row[c] - dotf);
        }
        if (j.dq != nullptr)
          gemmCore(false, false, rows, s.headDimK, keys, s.scale, dS, T, j.k + at.k, ldk, 1.0f, j.dq + at.q + i0 * ldq, ldq, false);
        if (j.dk != nullptr)
          gemmCore(true, false, keys, s.headDimK, rows, s.scale, dS, T, j.q + at.q + i0 * ldq, ldq, 1.0f, j.dk + at.k, ldk, false);
      }
    }
  }
}

void trainAttentionForward(float* out, float* probs, const float* q, const float* k, const float* v,
                           const TrainAttentionShape& s) {
  TrainAttentionJob j{out, probs, nullptr, nullptr, nullptr, nullptr, q, k, v, &s};
  trainDynamic(s.batch * s.heads, attentionForwardTasks, &j);
}

void trainAttentionBackward(float* dq, float* dk, float* dv, const float* dout, const float* probs, const float* q,
                            const float* k, const float* v, const TrainAttentionShape& s) {
  TrainAttentionJob j{nullptr, const_cast<float*>(probs), dq, dk, dv, dout, q, k, v, &s};
  trainDynamic(s.batch * s.kvHeads, attentionBackwardTasks, &j);
}

// ---------------------------------------------------------------------------------------------
// Strided block copies (narrow and concat along an axis, forward and backward).

struct CopyBlocksJob {
  float* dst;
  const float* src;
  int64_t dstStride, srcStride, len;
  bool accumulate;
};

void copyBlocksRange(void* ctx, int64_t b0, int64_t b1, int) {
  const CopyBlocksJob& j = *static_cast<const CopyBlocksJob*>(ctx);
  for (int64_t b = b0; b < b1; b++) {
    float* __restrict d = j.dst + b * j.dstStride;
    const float* __restrict s = j.src + b * j.srcStride;
    if (j.accumulate) {
      for (int64_t i = 0; i < j.len; i++) d[i] += s[i];
    } else {
      std::memcpy(d, s, static_cast<size_t>(j.len) * sizeof(float));
    }
  }
}

void copyBlocks(float* dst, int64_t dstOffset, int64_t dstStride, const float* src, int64_t srcOffset, int64_t srcStride,
                int64_t blocks, int64_t len, bool accumulate) {
  CopyBlocksJob j{dst + dstOffset, src + srcOffset, dstStride, srcStride, len, accumulate};
  trainStatic(blocks, 1 + 4 * TRAIN_GRAIN_ELEMENTS / (len + 1), copyBlocksRange, &j);
}

// ---------------------------------------------------------------------------------------------
// AdamW in float64, PyTorch's arrangement: p = p · (1 − lr · wd) − (lr / c1) · m / (sqrt(v) / sqrt(c2) + eps)
// (one division and one square root per value; the TypeScript loop divides m and v by c1 and c2
// first, so the two agree to float32 rounding, not bit for bit).

struct AdamwJob {
  float* p;
  const float* g;
  float* m;
  float* v;
  double beta1, beta2, eps, decay, stepSize, rootC2;
};

void adamwRange(void* ctx, int64_t i0, int64_t i1, int) {
  const AdamwJob& j = *static_cast<const AdamwJob*>(ctx);
  int64_t i = i0;
#if defined(__AVX512F__)
  const __m512d b1 = _mm512_set1_pd(j.beta1), nb1 = _mm512_set1_pd(1 - j.beta1);
  const __m512d b2 = _mm512_set1_pd(j.beta2), nb2 = _mm512_set1_pd(1 - j.beta2);
  const __m512d decay = _mm512_set1_pd(j.decay), stepSize = _mm512_set1_pd(j.stepSize);
  const __m512d rootC2 = _mm512_set1_pd(j.rootC2), eps = _mm512_set1_pd(j.eps);
  for (; i + 8 <= i1; i += 8) {
    const __m512d g = _mm512_cvtps_pd(_mm256_loadu_ps(j.g + i));
    const __m512d m = _mm512_add_pd(_mm512_mul_pd(b1, _mm512_cvtps_pd(_mm256_loadu_ps(j.m + i))), _mm512_mul_pd(nb1, g));
    const __m512d v = _mm512_add_pd(_mm512_mul_pd(b2, _mm512_cvtps_pd(_mm256_loadu_ps(j.v + i))), _mm512_mul_pd(_mm512_mul_pd(nb2, g), g));
    _mm256_storeu_ps(j.m + i, _mm512_cvtpd_ps(m));
    _mm256_storeu_ps(j.v + i, _mm512_cvtpd_ps(v));
    const __m512d denom = _mm512_add_pd(_mm512_div_pd(_mm512_sqrt_pd(v), rootC2), eps);
    const __m512d p = _mm512_mul_pd(_mm512_cvtps_pd(_mm256_loadu_ps(j.p + i)), decay);
    _mm256_storeu_ps(j.p + i, _mm512_cvtpd_ps(_mm512_sub_pd(p, _mm512_div_pd(_mm512_mul_pd(stepSize, m), denom))));
  }
#endif
  for (; i < i1; i++) {
    const double gi = j.g[i];
    const double mi = j.beta1 * j.m[i] + (1 - j.beta1) * gi;
    const double vi = j.beta2 * j.v[i] + (1 - j.beta2) * gi * gi;
    j.m[i] = static_cast<float>(mi);
    j.v[i] = static_cast<float>(vi);
    j.p[i] = static_cast<float>(j.p[i] * j.decay - j.stepSize * mi / (std::sqrt(vi) / j.rootC2 + j.eps));
  }
}

void adamw(float* p, const float* g, float* m, float* v, int64_t n, double lr, double beta1, double beta2, double eps,
           double weightDecay, double c1, double c2) {
  AdamwJob j{p, g, m, v, beta1, beta2, eps, 1 - lr * weightDecay, lr / c1, std::sqrt(c2)};
  trainStatic(n, 4 * TRAIN_GRAIN_ELEMENTS, adamwRange, &j);
}

double sumSquares(const float* x, int64_t n) { return dotDouble(x, x, n); }

struct ScaleJob {
  float* x;
  double factor;
};

void scaleRange(void* ctx, int64_t i0, int64_t i1, int) {
  const ScaleJob& j = *static_cast<const ScaleJob*>(ctx);
  float* __restrict x = j.x;
  for (int64_t i = i0; i < i1; i++) x[i] = static_cast<float>(x[i] * j.factor);
}

void scale(float* x, int64_t n, double factor) {
  ScaleJob j{x, factor};
  trainStatic(n, 4 * TRAIN_GRAIN_ELEMENTS, scaleRange, &j);
}

TrainKernels trainTable() {
  TrainKernels t;
  t.crossEntropyForward = crossEntropyForward;
  t.crossEntropyBackward = crossEntropyBackward;
  t.rmsNormForward = rmsNormForward;
  t.rmsNormBackward = rmsNormBackward;
  t.swigluForward = swigluForward;
  t.swigluBackward = swigluBackward;
  t.softmaxForward = softmaxForward;
  t.softmaxBackward = softmaxBackward;
  t.ropeRotate = ropeRotate;
  t.attentionForward = trainAttentionForward;
  t.attentionBackward = trainAttentionBackward;
  t.copyBlocks = copyBlocks;
  t.adamw = adamw;
  t.sumSquares = sumSquares;
  t.scale = scale;
  return t;
}

}  // namespace
