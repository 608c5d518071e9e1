// llama.cpp (ggml) as an oracle, without needing llama.cpp at test time: the fixtures below were
// produced once by a small C harness linked against node-llama-cpp 3.21.1's prebuilt
// libggml-base.so (linux-x64), calling quantize_row_<type>_ref and dequantize_row_<type> on the
// deterministic inputs of `sample` below (iq4_nl and iq4_xs: quantize_row_iq4_nl_ref /
// quantize_row_iq4_xs_ref and dequantize_row_iq4_nl / dequantize_row_iq4_xs, same library).
// For each type they hold ggml's quantized bytes of sample(101, 512, heavy), an FNV-1a hash of
// ggml's dequantized float32 bits for those bytes, and ggml's relative RMSE on
// sample(202, 8192, normal) and sample(303, 8192, heavy).
// Checks: our dequantize of ggml's bytes is bit-identical to ggml's; our quantizers' error is
// within a hair of ggml's reference quantizers on the same data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type DType } from '../../src/tensor/dtype.js';
import { dequantize, quantize } from '../../src/tensor/quant/index.js';

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Arithmetic-only generator (no transcendental functions), so every platform gets the same floats. */
function sample(seed: number, n: number, heavy: boolean): Float32Array {
  const r = seeded(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = r() + r() + r() + r() - 2;
    x[i] = heavy ? u / (0.15 + r()) : u;
  }
  return x;
}

function fnv1a(values: Float32Array): number {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

function relativeRmse(x: Float32Array, y: Float32Array): number {
  let err = 0;
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    err += (y[i]! - x[i]!) ** 2;
    sum += x[i]! ** 2;
  }
  return Math.sqrt(err / sum);
}

const GGML: Record<string, { bytes: string; hash: number; rmse: { normal: number; heavy: number } }> = {
  q4_0: {
    hash: 0x50ab5e86,
    rmse: { normal: 0.081535, heavy: 0.116681 },
    bytes:
      'ADiYjIlwVZh6c3WIaJeqlnZoirppmYm4cGV4iYdouXh5mXiYcDaIUIh5iZaIxJhimGcVVXm9sjfIUJaXiGlbgXdzh6amqJe5' +
      'MbmbiLl5YIl4iZiIiKppeHh4c7SVdu34ZmjbCXq8ZWaUopx1cbgEuVeHyXmFd4SpjqiZmaSbhLdqbpeIRwZ52nZHRnaYyMd3' +
      '1LWp2IWapof4iahwmVyZummo+rS/PMeUiZoEWDgYCaWJNWVWTLVYmZxmeapqm2BlF0pljTlWMTegiGhZh5t4Zneal4gnuIK3' +
      'GTiHrKSYiOkGpYinVjp5iHOIVLhWiJeHmXOAe3dH+IlWh5mG0DSFe6vGuWpZ14iohApzZWho/LqHiXmVp5mZWoiYeJkKiYl5',
  },
  q4_1: {
    hash: 0x7e76036,
    rmse: { normal: 0.076181, heavy: 0.095314 },
    bytes:
      'ezYAxLqvrJBmup2Uh6p6udy4h3rXOBPBcjNDBV94ZUNGdANUUiNkNG01cMKqYJmLqqeZ5alyqngWZprfNjayw/pwyMmae36i' +
      'iYSp19fKydtpNwO/IEMCU28yVEMkREQhc1RUVJ80OMBriRIHmZg194ZTm5lsbWOaDThQwvo1l2cldWp3e0VgRlVVS1JCNxjC' +
      'lIBodqf4hRWJuLmJZzY4eCM2r8FmN3p1WXgHh2ePZ6RnRZdXSTXwwFDESWuHZvuox+f3W3fKmqq0NA2/plVBmXU0hFKPiee0' +
      'iWDFmHo1McPQqop8uc+beJnOybo66qPpiDcZxJi9tKmZ+ge2iKhnO4qZg4mYOErEqnh4eGaMj4SJyAeHqohmehQ00MCWnc3n' +
      '23tq+Jq5lAyEdop5sjhEvzUxQhgVIiKAQyNTEvAyIkE=',
  },
  q5_0: {
    hash: 0x6d98e186,
    rmse: { normal: 0.040763, heavy: 0.058275 },
    bytes:
      'ADRnlic6IQgT4Kog5ebrAMAvVB3cwYq2h/6OpcMiEW/wy+8CDsFi8fMy0CFwMhnE9YURkA/jASsPeC/DEb0ru+FZsjNxoI38' +
      'gLA9P/CytgPu1x9MW0E/UTG175+nCyUBUvHQE+ABIADwNcH/7+BzsMxDTXIp7NvwzM+VAuNY2d0nNTjbcbQyvlr/CWKvDnLy' +
      'Cu4IUwtBIiJYJ4SzyzCMcMXdLgGfDeKz7I2M7BBxfv3Uscv9/7UzoAoUTA7xAjDgMqcydcFR+rCzFz0YX3d9KAIkCKBxIBFJ' +
      'EmrKq0yx92imIJEiObvhVMQX0NsvdMoLYr0xM24CMa5A8MCiDifQvO41Lh9fb/RdGTQ6ub+iDkhIIAHCDEvwPqxl4gDmAVS0' +
      'kEwezKsPHh4i9/Dn/n7wAqv/MwvQMHZLnQIL5ld8Y8ORnfEw+ATny9HP/Lbm/XtqDQPiKT0SEZTxH9AyBAER8g==',
  },
  q5_1: {
    hash: 0x14ae3953,
    rmse: { normal: 0.036613, heavy: 0.046408 },
    bytes:
      'RjIAxGe+73uFT1ggzXQqJx5F9HO6YB/1rzQTwTAAAADlZncav/DKlZvoBrilVslnQDFwwl3N/cVVsEIXRW4z2WPkVeAt3SWv' +
      'AjKyw33lnf/14ICDReftVBIZY6+ulYO2LDMDvxAAAABQhwWm33S4hliIlzHmqamoeTA4wDO8so3WFCQPMzBq/hynJiLYysck' +
      '2DNQwkFBBQD1aj7fWvrE/9aK0Iyruna1BjMYwiTPcw8pEMDtb/EbKgNhYgLebWDx8TGvwTQCgErMX/Xrs/EODs8f3ljemz6v' +
      'HjHwwMzo0uegmILXDtz3UJ/f7rb+lTZUjjANvwiTSd9MqpIi+3cotA8D3mgTwIogTTExw/6/d+/ARQXpY48m8DOck3V01VbS' +
      'SjMZxDu7v/Mga3lSI/QObBJQzngEIgcTczRKxG+z4Ttk8OHx3RgPGRKBDw5UAd305S/QwPbLn1dNK5zPt/e18CR0KQkY7QXz' +
      'izREvwgAgBBrYpQxG0REEHVXtiPwZFSD',
  },
  q8_0: {
    hash: 0x628b7baa,
    rmse: { normal: 0.005078, heavy: 0.007357 },
    bytes:
      'CCgFQheB1P0lr9YE//Yg5t8EFAAG880P8PPtAOATJwnr4Jcq6fP1B38pBu4Q/PD87PMB+B/v+dMMIRL/Ax3PCwnsFe59JgaB' +
      '+BUL2vu9+pkI6tXWC0oGy//wAQ39Ow3dDNmN1/MrwicBgef3BBIzl+64+ODbBPQKQdgVF/ra1QPt6QYkJR0VKjwp1vvv9n/r' +
      'APQCAv3c9wcG//ED1Qsb+RAB8AEI6B8LDg58JDYkqQEcBNX058E2GEZYwSnuDZqIIh+1fw/XGRnw5OkXeig57wsS7+4zDUHp' +
      'pvrx7EDJf88sAMgL/Q0E2wTf7vLZ8JMn2ZkQ+AsZ7eQiFh0eAPkTFiEa9AE5fxSqEDxAEffGxgnfJen8Ld8gEfnyAX/yyPPc' +
      '9fvlsfz33gGEA+gN6i/pyiHYBCWCxRQ/9OA8BPsA+DX0MDIn1kvG7QHvfy1LbHre+E8gLVcl+u65J/Tf4Ml/KgnhMKvyGjXt' +
      '6SQQ2CP0GRhyRBz/UChAJ4H+/RLxNgDe8Cbz+/f7ousj+N/TAg3r2fAVEwenLfwqIijyP77/Bg3i2P3w5CcPALAFAR0jEwJc' +
      'gR36GNSw7wPx/FwoJAUPDO1If8kTDgDyJQzpJDIA9PrtCwQPC0eCAywG6v7ZJNUyN+QXGQnrBAC9IbfWCPoB9CU4MeDLS/gZ' +
      '+IHx3+fhCisX6fM1FvL13/oE/vDh9fXtAP8N7eb19TQF9hfpf/75CQ==',
  },
  q2_k: {
    hash: 0xe6e8e2d1,
    rmse: { normal: 0.287435, heavy: 0.357663 },
    bytes:
      '+2YviKqp60duZlaJu1y4fKIDo6Cu1uMRpkKikpOSorLuFqahaC4peSkeYZqLlq21uBngpdvYtaX10cnonZ3x2bVKYFKL2VYe' +
      'WYaaSUcGBkomMX80V6aWNmgV2ZeY7Ur7VIloXxGVju2a2Z2JueuZnKmMXa3SiUJSloOcS5qfvqMWyafalTd01qJ6bRFmZUVz' +
      'BlZgJl4aaioqGxiqWi5RCd0aGVoAMpU0',
  },
  q3_k: {
    hash: 0xcc1c91f5,
    rmse: { normal: 0.146145, heavy: 0.189342 },
    bytes:
      'XxP3/oy5f3L2s5/Tk5r+nyd5pfBeT37ebntcQ/Px9tQEAsEQA3yBZcOQAPD1MwMgDqzN8wSNyyNCeAG2h7nKrfk4TRA8cejU' +
      'dHxITTQwfFjG4DwNrw/KwMKUjd4ThZUNc4eATPCu8+aPKpwWiioF/e47ftzPp9Pqr/+bv+fT+vz389q/oHXw+UirYryZuAEY' +
      'J3kDnxjgwHAAGiA5SPSnGZi0M1TwjPt0QyYzih2/n7NxIJRZUroMAwNijWBETAgBEWFsMyChABnDQQcwPDDDLctEZLUgC6W2' +
      'TjnsKg==',
  },
  q4_k: {
    hash: 0x1996a945,
    rmse: { normal: 0.069141, heavy: 0.0893 },
    bytes:
      '5SAoLOp/5qt/qLK8sB707ys/PFD3il00Z0o6ST04SEt8OksJVntpSVl6CFxdO2k4qQCImqq22SSJQpl3dqaarul1ubiZemmt' +
      'ioaqxsHGuNywoyKDn4JUc2REtJHD1ESkYoQQBaaTNfSCVJWSZ2VllUoFh2d1hVpXm4WQlnVli4Kfg2l2oveGF4a0toRlNTN1' +
      '/iBiLOjhXuPp45p1tP8qmwZHmrV5aLeGd392tHalt6dWw0dnhWfwp8bo9lp2xJmlBqWhyZX0tIKf6aekqaA1mOqlhHm3w5l1' +
      'mMjOuzjmrOmXfISIaLnmRYiHdmqZiGOYqHpqeWiOcIqIugVzl3hneFYdLYdbKyoIKjk0HAQmKhk5OEwdDScljzkrWRD4NydH',
  },
  q5_k: {
    hash: 0x6834434e,
    rmse: { normal: 0.035108, heavy: 0.044879 },
    bytes:
      'yBwHLOp/5Kh/qfP8wB4lD20hjQw+i00AzIGtpSEpzK3NoU0NrKWFLa2JrKkJCQ0sVW94oP0EqmfNhWSDWWCfdedkdRK898KS' +
      'keQPt6pW0W9EAAI2VX3CORKUNPDtXSVu9OuDgTPl01wVDlWtop2BumA3RfYv9JjWyHhnIYapeUjVCCAKPTdr+BWoKSPeusoq' +
      'lQoO3/oatK8mGSAs69oGFS8Ww+1V/gwvDWhtCNprZ/rEHGYs5+Jf5OjjmXXB/Dq/MHhrvll5akp8fShaPDpCfnx6WFRYOC7z' +
      'entOLfQ6Xx4MjyV747F+Df//7WjtW15PrJWP3vvf8FCM0ey17JgzWgtZUpI692cEPsI9V0NQaiDESQnhboYh+j+fnHZw3FjS' +
      'QAsZEtOE/pwiEA7oRBLXQ2IG5/XSHwAWEYUMB1AC0PK9LEwPp0hFAVV0aTkITUUzZGKaPRxPTA9zWLMg4m9Qjw==',
  },
  q6_k: {
    hash: 0x28e6823f,
    rmse: { normal: 0.016916, heavy: 0.023212 },
    bytes:
      'ERDmUTV/+QzmcSC+aGo4ISwQBLgASvYIRGA8XAlWw8sGA6PuEVbeVMzh5IF1E9AyFDVrVDclS+CSstH39iNtxUqhRGOhpSBT' +
      'f4AB6bKef8AUw1AI5dsc0fSR9o5HOKpLTQNf4EaOr3S5dp2YB+FmcoStOQ0oGLJRzBoKyiTn5uuqC1pkoZWWGFUKallamWm6' +
      'LtZmUaju2XmpnmAaC1ZZJHIWrmqUlnpquZ6ClpJRvYZJZpyuZxVu0lVqVmSrqqpmTh6AMj83SdmaIeLUPKk6t78WFkElaDiM' +
      'guMAYeOOQ1lDkSlcb27IsHExmpMb3IoCqFYQAfVAzdgPgc+Q3v7t/J26y91PBRBUkCWtdHE5Egz49dpphT+itURwLwol8AbQ' +
      'MNIA15nlwIcwN+9m5QzMgayPJ++MDTWOcE5L3RCkN312tw0A3V57MzE08yKgYQsSK+8ipnmeZaWqakaYVmpWeipamWBpWZmq' +
      'UGZRkoGKGeFGlUW3tBVqoqHZpWWJq8aGqJaqmmamppuYelmuUYgZmpVVyTYt08/TRC8vS7FPGSzLgPwW',
  },
  iq4_nl: {
    hash: 0x92480e64,
    rmse: { normal: 0.076869, heavy: 0.094565 },
    bytes:
      '/CeojYpwRJhrcmSIWJe7lmVYlqpamZm3cFVniYdYyXh6qWiZsSaIQIdqiZWHw5dRmVYUVXm9yyfYUKaneFlMgWZjh7W1qKe5' +
      'PqmbiLl5YIpoiZiIeKtZd3d4gqSUdf74VljbCXq9ZGaToq1lf6gEyUeGyXmEd4O6jriZmrOcY6dbb5aJRwZp6mU2NWWYycZ2' +
      'A6aq6ISbtYb5iahwqUypy1m4D6W/LMajiZsDSCgYCbSZJFRFdaVIma1VabtbnGBlFzpkjilWKieweFhJh5xoVXerl5cnt4G2' +
      'HCiHrbOYiOkFpXinRitpiHKIlqhFh5eHqXOAfHY3+IlFd6qF6ySEfLzGylpJ1niocwtzVWlXEKuGinmkppmZS3iYaKkKiZl5',
  },
  iq4_xs: {
    hash: 0x7a019ce1,
    rmse: { normal: 0.074136, heavy: 0.093953 },
    bytes:
      'lhbzBAMwV+qojYpwRJhrcmSIWKe7lmVYWpmZt3BVZ4mHWMl4eqlomYhAh2qJlYfDl1GZVhRVeb3YUKaneFlMgWZjh7W1qKe5' +
      'm4i5eWCaaImYiHirWXd3eJR17vhWWNsJer1kZpOirWUEyUeGyXmEd4O6jriZmrOcW2+WiTcGauplNjVlmMnGdhAX1SNCFLML' +
      'qtiEmrWG+ImocKlMqctZuL88xpOJmgRIOBgZtJkkVEVIma1VabtbnGBkFzpUjilWsHhYSYecaFV3q5eHJ7eCtoets5iI6QWl' +
      'eKdGK2mIcohFh5eHmXOAfHY3+IlVd6qFhHy8xspaSdZ4qHMLc1VpV4aKeaSmmZlLeJhoqQqJmXk=',
  },
};

test('the fixture inputs are the ones ggml saw (generator unchanged)', () => {
  const x = sample(101, 512, true);
  assert.equal(x.length, 512);
  // ggml's q8_0 dequantization of these inputs must stay within q8_0 precision of them.
  const y = dequantize('q8_0', Buffer.from(GGML.q8_0!.bytes, 'base64'), 512);
  assert.ok(relativeRmse(x, y) < 0.01, `q8_0 fixture does not match the generator (rmse ${relativeRmse(x, y)})`);
});

for (const dtype of Object.keys(GGML) as DType[]) {
  test(`${dtype}: dequantize of ggml-quantized bytes is bit-identical to ggml's dequantize_row`, () => {
    const fixture = GGML[dtype]!;
    const bytes = new Uint8Array(Buffer.from(fixture.bytes, 'base64'));
    const y = dequantize(dtype, bytes, 512);
    assert.equal(fnv1a(y), fixture.hash, `${dtype}: decoded values differ from ggml's`);
    assert.ok(relativeRmse(sample(101, 512, true), y) < 0.5, 'decoded values approximate the input');
  });
}

const quantizers: DType[] = ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'iq4_nl', 'iq4_xs'];
for (const dtype of quantizers) {
  test(`${dtype}: quantization error matches ggml's reference quantizer (within 0.2%, k-quants 2%, iq4 at or below)`, (t) => {
    const ratios: string[] = [];
    for (const [dist, seed, heavy] of [['normal', 202, false], ['heavy', 303, true]] as const) {
      const x = sample(seed, 8192, heavy);
      const ours = relativeRmse(x, dequantize(dtype, quantize(dtype, x), x.length));
      const ggml = GGML[dtype]!.rmse[dist];
      // The simple formats follow ggml's recipe exactly; the k-quants search in the same spirit.
      // The iq4 quantizers minimize plain squared error where ggml weights it by x²: measured
      // 0.93-0.97x ggml's RMSE here (iq4_nl 0.0714 vs 0.0769, 0.0903 vs 0.0946; iq4_xs 0.0719
      // vs 0.0741, 0.0910 vs 0.0940), so they must not be worse.
      const slack = dtype.startsWith('iq4') ? 1 : dtype.endsWith('_k') ? 1.02 : 1.002;
      assert.ok(ours <= ggml * slack, `${dtype} ${dist}: ours ${ours}, ggml ${ggml}`);
      ratios.push(`${dist} ${(ours * 100).toFixed(3)}% vs ggml ${(ggml * 100).toFixed(3)}%`);
    }
    t.diagnostic(`${dtype}: ${ratios.join(', ')}`);
  });
}
