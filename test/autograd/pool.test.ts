// The buffer pool of training steps (src/autograd/pool.ts): what it lends, when it takes buffers
// back, and that pooled training steps compute exactly what unpooled ones do (a reused buffer that
// kept old values, or one handed back while still in use, would change the parameters).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BufferPool, capacityFor, floats, outputFloats, withPool } from '../../src/autograd/pool.js';
import { backward, parameter } from '../../src/autograd/var.js';
import { linear } from '../../src/autograd/linear.js';
import { sum } from '../../src/autograd/reduce.js';
import { swiglu } from '../../src/autograd/unary.js';
import { Random } from '../../src/autograd/random.js';
import { parseHfConfig } from '../../src/formats/hf-config.js';
import { TrainModel } from '../../src/train/model.js';
import { AdamW, decayGroups } from '../../src/train/optimizer.js';
import { Trainer } from '../../src/train/trainer.js';

test('a pool lends zeroed arrays, takes them back when the scope ends, and lends them again', () => {
  const pool = new BufferPool();
  const first = withPool(pool, () => {
    const a = floats(5000);
    a.fill(3);
    assert.equal(floats(10).length, 10, 'small arrays are plain ones');
    return a;
  });
  assert.equal(pool.heldFloats, capacityFor(5000));
  const again = withPool(pool, () => floats(5000));
  assert.equal(again.buffer, first.buffer, 'the same memory is lent again');
  assert.ok(again.every((v) => v === 0), 'zeroed when lent again');
  assert.notEqual(floats(5000).buffer, first.buffer, 'outside a scope: a new array');
  const dirty = withPool(pool, () => {
    const a = outputFloats(5000);
    assert.equal(a.buffer, first.buffer);
    return a[0];
  });
  assert.equal(dirty, 0, 'what the last user left (it wrote nothing)');
});

test('sizes within one capacity class share arrays; capacities waste at most 1/8', () => {
  for (const n of [4096, 5000, 65537, 1 << 20, 3_000_001]) {
    const c = capacityFor(n);
    assert.ok(c >= n && c <= n * 1.125, `${n} → ${c}`);
  }
  const pool = new BufferPool();
  const a = withPool(pool, () => floats(9000));
  const b = withPool(pool, () => floats(9100));
  assert.equal(b.length, 9100);
  assert.equal(b.buffer, a.buffer, '9000 and 9100 floats share one array');
  assert.equal(pool.heldFloats, capacityFor(9000));
});

test('nested scopes of one pool keep the outer scope\'s arrays lent until it ends', () => {
  const pool = new BufferPool();
  withPool(pool, () => {
    const outer = floats(5000);
    withPool(pool, () => floats(6000));
    assert.notEqual(floats(5000).buffer, outer.buffer, 'the outer array is still lent');
  });
  assert.equal(pool.heldFloats, 2 * capacityFor(5000) + capacityFor(6000));
});

test('backward hands intermediate gradients back for reuse and keeps parameter gradients', () => {
  const rng = new Random(3);
  const x = parameter(rng.normalArray(64 * 128, 1), [64, 128], 'x');
  const w = parameter(rng.normalArray(128 * 128, 0.1), [128, 128], 'w');
  const pool = new BufferPool();
  const reference = () => {
    x.clearGrad();
    w.clearGrad();
    backward(sum(swiglu(linear(x, w), linear(x, w))));
    return [Float32Array.from(x.grad!), Float32Array.from(w.grad!)];
  };
  const [gx, gw] = reference();
  for (let round = 0; round < 3; round++) {
    x.clearGrad();
    w.clearGrad();
    withPool(pool, () => backward(sum(swiglu(linear(x, w), linear(x, w)))));
    assert.deepEqual(x.grad, gx, `x gradient, round ${round}`);
    assert.deepEqual(w.grad, gw, `w gradient, round ${round}`);
  }
  // Two linear outputs and swiglu's output (8192 floats each) plus the reused intermediate gradients.
  assert.ok(pool.heldFloats <= 6 * capacityFor(8192), `pool holds ${pool.heldFloats} floats`);
});

test('pooled trainer steps leave exactly the parameters of unpooled forward + backward + AdamW', () => {
  const config = parseHfConfig({
    architectures: ['LlamaForCausalLM'], vocab_size: 512, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, initializer_range: 0.05,
  });
  const batch = 2;
  const seqPlusOne = 33;
  const rng = new Random(5);
  const data = Array.from({ length: 3 }, () => rng.intArray(batch * seqPlusOne, config.vocab_size));
  const pooled = TrainModel.init(config, 1);
  const trainer = new Trainer(pooled, {
    lr: 1e-2, minLr: 1e-2, weightDecay: 0.1, betas: [0.9, 0.95], eps: 1e-8, clip: 0,
    schedule: { type: 'cosine', warmup: 0, steps: 100, decaySteps: 0 }, mtp: { enabled: false, lambda: 0 },
    moe: { gamma: 0, alpha: 0 }, fp8: false, workers: 1,
  });
  const plain = TrainModel.init(config, 1);
  const optimizer = new AdamW(decayGroups(plain.parameterList, 0.1), { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  for (const [step, ids] of data.entries()) {
    const record = trainer.step(step, [ids], batch, seqPlusOne);
    optimizer.zeroGrad();
    const r = plain.forward(ids, batch, seqPlusOne);
    backward(r.loss);
    optimizer.step(record.lr);
    assert.equal(record.loss, r.mainLoss, `loss of step ${step}`);
  }
  for (const [name, p] of plain.params) assert.deepEqual(pooled.params.get(name)!.value, p.value, name);
});
