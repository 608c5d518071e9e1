// Training throughput benchmark (npm run bench:train): a fixed small model (d_model 256, 4 layers,
// seq 256, batch 16, vocab 4096) in a dense Llama variant and a DeepSeek-V3 MoE variant (MLA,
// 8 routed experts top-2 + 1 shared, MTP off), trained for a few AdamW steps on random tokens.
// Prints tokens/s and the achieved GFLOPS = (6 · matmul parameters per token + attention FLOPs
// per token) · tokens/s against the FMA peak (measured with the native probe when the addon is
// built, else the 424 GFLOPS of ../shared/spec/machine-performance.md). If PyTorch imports, the
// dense model is also trained in PyTorch on the same threads and the ratio is printed.
// Usage: node dist/bench/train.js [steps=3] [dense|moe]
import { spawnSync } from 'node:child_process';
import { Random } from '../src/autograd/random.js';
import { gemmBackend } from '../src/autograd/compute.js';
import { parseHfConfig, type HfConfig } from '../src/formats/hf-config.js';
import { TrainModel } from '../src/train/model.js';
import { Trainer } from '../src/train/trainer.js';
import { getBackend, describeBackend } from '../src/tensor/index.js';
import { loadNativeAddon } from '../src/tensor/native.js';

const STEPS = Number(process.argv[2] ?? 3);
const ONLY = process.argv[3];
const D = 256;
const LAYERS = 4;
const SEQ = 256;
const BATCH = 16;
const VOCAB = 4096;
const HEADS = 4;

const dense = parseHfConfig({
  architectures: ['LlamaForCausalLM'], vocab_size: VOCAB, hidden_size: D, intermediate_size: 4 * D, num_hidden_layers: LAYERS,
  num_attention_heads: HEADS, num_key_value_heads: HEADS, max_position_embeddings: SEQ, initializer_range: 0.02,
});
const moe = parseHfConfig({
  architectures: ['DeepseekV3ForCausalLM'], vocab_size: VOCAB, hidden_size: D, intermediate_size: 4 * D, moe_intermediate_size: 256,
  num_hidden_layers: LAYERS, first_k_dense_replace: 1, num_attention_heads: HEADS, num_key_value_heads: HEADS,
  q_lora_rank: 128, kv_lora_rank: 64, qk_nope_head_dim: 48, qk_rope_head_dim: 16, v_head_dim: 64,
  n_routed_experts: 8, n_shared_experts: 1, num_experts_per_tok: 2, n_group: 1, topk_group: 1, topk_method: 'noaux_tc',
  num_nextn_predict_layers: 0, max_position_embeddings: SEQ, initializer_range: 0.02, rope_scaling: null,
});

/** Parameters multiplied per token in GEMMs (active experts only) and attention FLOPs per token (fwd + bwd). */
function flopsPerToken(model: TrainModel, config: HfConfig): { matmulParams: number; attentionFlops: number } {
  let matmulParams = 0;
  const c = config as HfConfig & { n_routed_experts?: number; num_experts_per_tok?: number };
  for (const [name, p] of model.params) {
    if (p.rank !== 2 || name === 'model.embed_tokens.weight') continue;
    const expert = /\.experts\.\d+\./.test(name);
    matmulParams += expert ? (p.size * c.num_experts_per_tok!) / c.n_routed_experts! : p.size;
  }
  let qk: number;
  let v: number;
  if (config.architecture === 'DeepseekV3ForCausalLM') {
    qk = config.qk_nope_head_dim + config.qk_rope_head_dim;
    v = config.v_head_dim;
  } else {
    qk = (config as { head_dim: number }).head_dim;
    v = qk;
  }
  // Full (non-causal-skipping) score and value products, as the kernel computes them: 2·T·H·(Dk + Dv) forward, x3 with backward.
  const attentionFlops = 3 * LAYERS * 2 * SEQ * HEADS * (qk + v);
  return { matmulParams, attentionFlops };
}

function peakGflops(threads: number): { value: number; how: string } {
  try {
    const addon = loadNativeAddon();
    addon.probeFma(threads, 5_000_000);
    const r = addon.probeFma(threads, 50_000_000);
    return { value: r.flops / r.seconds / 1e9, how: `measured FMA probe, ${threads} threads` };
  } catch {
    return { value: 424, how: 'machine-performance.md (2 threads)' };
  }
}

function bench(name: string, config: HfConfig): { tokensPerSecond: number; gflops: number } {
  const model = TrainModel.init(config, 1);
  const trainer = new Trainer(model, {
    lr: 1e-3, minLr: 1e-4, weightDecay: 0.1, betas: [0.9, 0.95], eps: 1e-8, clip: 1,
    schedule: { type: 'cosine', warmup: 1, steps: STEPS + 1, decaySteps: 0 },
    mtp: { enabled: false, lambda: 0 }, moe: { gamma: 0.001, alpha: 0.0001 }, fp8: false,
  });
  const rng = new Random(2);
  const batch = () => rng.intArray(BATCH * (SEQ + 1), VOCAB);
  trainer.step(0, [batch()], BATCH, SEQ + 1); // warm-up
  const start = performance.now();
  let loss = 0;
  for (let s = 1; s <= STEPS; s++) loss = trainer.step(s, [batch()], BATCH, SEQ + 1).loss;
  const seconds = (performance.now() - start) / 1000;
  const tokensPerSecond = (STEPS * BATCH * SEQ) / seconds;
  const f = flopsPerToken(model, config);
  const gflops = ((6 * f.matmulParams + f.attentionFlops) * tokensPerSecond) / 1e9;
  console.log(`${name.padEnd(6)} ${(model.parameterCount() / 1e6).toFixed(2)}M params (${(f.matmulParams / 1e6).toFixed(2)}M in GEMMs per token) | ${(seconds / STEPS).toFixed(2)} s/step | ${tokensPerSecond.toFixed(0)} tokens/s | ${gflops.toFixed(1)} GFLOPS | loss ${loss.toFixed(3)}`);
  return { tokensPerSecond, gflops };
}

const PYTORCH = String.raw`
import sys, time, torch, torch.nn as nn, torch.nn.functional as F
threads, steps, D, L, T, B, V, H = map(int, sys.argv[1:9])
torch.set_num_threads(threads); torch.manual_seed(0)
class Rms(nn.Module):  # nn.RMSNorm before torch 2.4
    def __init__(s, d):
        super().__init__(); s.w = nn.Parameter(torch.ones(d))
    def forward(s, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * s.w
RMSNorm = getattr(nn, 'RMSNorm', Rms)
def causal(q, k, v):  # F.scaled_dot_product_attention before torch 2.0
    s = (q @ k.transpose(-2, -1)) / (q.shape[-1] ** 0.5)
    s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float('-inf'))
    return torch.softmax(s, -1) @ v
sdpa = getattr(F, 'scaled_dot_product_attention', None)
attend = (lambda q, k, v: sdpa(q, k, v, is_causal=True)) if sdpa else causal
class Block(nn.Module):
    def __init__(s):
        super().__init__(); s.n1 = RMSNorm(D); s.n2 = RMSNorm(D)
        s.qkv = nn.Linear(D, 3 * D, bias=False); s.o = nn.Linear(D, D, bias=False)
        s.g = nn.Linear(D, 4 * D, bias=False); s.u = nn.Linear(D, 4 * D, bias=False); s.d = nn.Linear(4 * D, D, bias=False)
    def forward(s, x):
        q, k, v = s.qkv(s.n1(x)).view(B, T, 3, H, D // H).unbind(2)
        a = attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        x = x + s.o(a.transpose(1, 2).reshape(B, T, D)); h = s.n2(x)
        return x + s.d(F.silu(s.g(h)) * s.u(h))
class M(nn.Module):
    def __init__(s):
        super().__init__(); s.e = nn.Embedding(V, D); s.b = nn.ModuleList(Block() for _ in range(L)); s.n = RMSNorm(D); s.h = nn.Linear(D, V, bias=False)
    def forward(s, x):
        x = s.e(x)
        for b in s.b: x = b(x)
        return s.h(s.n(x))
m = M(); opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
def step():
    ids = torch.randint(0, V, (B, T + 1))
    loss = F.cross_entropy(m(ids[:, :-1]).reshape(-1, V), ids[:, 1:].reshape(-1))
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step()
step(); t0 = time.time()
for _ in range(steps): step()
print(steps * B * T / (time.time() - t0), torch.__version__)
`;

/** The first Python that imports torch: python3 on PATH, else Debian's (python3-torch installs there). */
function pythonWithTorch(): string | null {
  for (const python of ['python3', '/usr/bin/python3']) {
    if (spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0) return python;
  }
  return null;
}

function pytorchRun(threads: number): { tokensPerSecond: number; version: string } | string {
  const python = pythonWithTorch();
  if (python === null) return 'PyTorch peer missing (neither python3 nor /usr/bin/python3 imports torch; nothing installed)';
  const r = spawnSync(python, ['-c', PYTORCH, String(threads), String(STEPS), String(D), String(LAYERS), String(SEQ), String(BATCH), String(VOCAB), String(HEADS)], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) return `PyTorch run failed: ${r.stderr.slice(-300)}`;
  const [tokens, version] = r.stdout.trim().split(/\s+/);
  return { tokensPerSecond: Number(tokens), version: `${python} torch ${version}` };
}

const backend = getBackend();
const threads = backend.threads;
console.log(`frugal training benchmark: ${describeBackend(backend)}; autograd GEMM: ${gemmBackend() ? backend.name : 'TypeScript loops'}`);
console.log(`model: d_model ${D}, ${LAYERS} layers, ${HEADS} heads, seq ${SEQ}, batch ${BATCH} (${BATCH * SEQ} tokens/step), vocab ${VOCAB}; ${STEPS} timed AdamW steps after 1 warm-up`);
const peak = peakGflops(threads);
console.log(`FMA peak: ${peak.value.toFixed(1)} GFLOPS (${peak.how})`);
const results: Record<string, { tokensPerSecond: number; gflops: number }> = {};
if (ONLY !== 'moe') results.dense = bench('dense', dense);
if (ONLY !== 'dense') results.moe = bench('moe', moe);
const SPEC_PEAK = 424; // machine-performance.md: FMA peak on 2 threads of an idle machine
for (const [name, r] of Object.entries(results)) {
  console.log(`${name}: ${(100 * r.gflops / peak.value).toFixed(2)}% of the measured FMA peak, ${(100 * r.gflops / SPEC_PEAK).toFixed(2)}% of the ${SPEC_PEAK} GFLOPS spec peak`);
}
if (results.dense) {
  const torch = pytorchRun(threads);
  if (typeof torch === 'string') console.log(torch);
  else console.log(`PyTorch dense (${torch.version}): ${torch.tokensPerSecond.toFixed(0)} tokens/s on ${threads} threads; frugal / PyTorch = ${(results.dense.tokensPerSecond / torch.tokensPerSecond).toFixed(3)}`);
}
