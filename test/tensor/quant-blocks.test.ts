// Block layouts: hand-built blocks decoded by `dequantize` compared element by element with
// values computed here, independently, from the formulas of formats-and-api.md §1.5.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type DType, dtypeInfo } from '../../src/tensor/dtype.js';
import { dequantize } from '../../src/tensor/quant/index.js';

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

function halfValue(bits: number): number {
  const sign = bits >> 15 ? -1 : 1;
  const e = (bits >> 10) & 31;
  const m = bits & 1023;
  if (e === 31) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * Math.pow(2, -14) * (m / 1024);
  return sign * Math.pow(2, e - 15) * (1 + m / 1024);
}

/** Little-endian field readers over a block, independent of the implementation's helpers. */
class Block {
  readonly view: DataView;
  constructor(readonly bytes: Uint8Array, readonly at: number) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset + at);
  }
  u8(o: number): number { return this.view.getUint8(o); }
  i8(o: number): number { return this.view.getInt8(o); }
  u32(o: number): number { return this.view.getUint32(o, true); }
  half(o: number): number { return halfValue(this.view.getUint16(o, true)); }
  f32(o: number): number { return this.view.getFloat32(o, true); }
}

/** A random finite f16 pattern of moderate magnitude (2^-6 .. 2^4), random sign. */
function randomHalf(rand: () => number, positive = false): number {
  const e = 9 + Math.floor(rand() * 11);
  const m = Math.floor(rand() * 1024);
  const sign = !positive && rand() < 0.5 ? 0x8000 : 0;
  return sign | (e << 10) | m;
}

function setHalf(bytes: Uint8Array, at: number, bits: number): void {
  bytes[at] = bits & 0xff;
  bytes[at + 1] = bits >> 8;
}

/** Spec-formula reference decoders: element e of the block starting at blk. */
type RefDecoder = (blk: Block, e: number) => number;

function kScaleMin(blk: Block, base: number, i: number): [number, number] {
  const s = (k: number) => blk.u8(base + k);
  if (i < 4) return [s(i) & 63, s(i + 4) & 63];
  return [(s(i + 4) & 0xf) | ((s(i - 4) >> 6) << 4), (s(i + 4) >> 4) | ((s(i) >> 6) << 4)];
}

function nibble(blk: Block, qsAt: number, e: number): number {
  const byte = blk.u8(qsAt + (e % 16));
  return e < 16 ? byte & 0xf : byte >> 4;
}

/** The IQ4_NL / IQ4_XS codebook (ggml's kvalues_iq4nl). */
const IQ4_VALUES = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

const refs: Record<string, RefDecoder> = {
  q4_0: (b, e) => (nibble(b, 2, e) - 8) * b.half(0),
  q4_1: (b, e) => nibble(b, 4, e) * b.half(0) + b.half(2),
  q5_0: (b, e) => ((nibble(b, 6, e) | (((b.u32(2) >>> e) & 1) << 4)) - 16) * b.half(0),
  q5_1: (b, e) => (nibble(b, 8, e) | (((b.u32(4) >>> e) & 1) << 4)) * b.half(0) + b.half(2),
  q8_0: (b, e) => b.i8(2 + e) * b.half(0),
  q4_k: (b, e) => {
    const c = Math.floor(e / 64);
    const within = e % 64;
    const sub = 2 * c + (within >= 32 ? 1 : 0);
    const byte = b.u8(16 + 32 * c + (within % 32));
    const q = within < 32 ? byte & 0xf : byte >> 4;
    const [sc, mn] = kScaleMin(b, 4, sub);
    return b.half(0) * sc * q - b.half(2) * mn;
  },
  q5_k: (b, e) => {
    const c = Math.floor(e / 64);
    const within = e % 64;
    const l = within % 32;
    const sub = 2 * c + (within >= 32 ? 1 : 0);
    const byte = b.u8(48 + 32 * c + l);
    const q = (within < 32 ? byte & 0xf : byte >> 4) + ((b.u8(16 + l) >> sub) & 1) * 16;
    const [sc, mn] = kScaleMin(b, 4, sub);
    return b.half(0) * sc * q - b.half(2) * mn;
  },
  q6_k: (b, e) => {
    const h = Math.floor(e / 128);
    const group = Math.floor((e % 128) / 32);
    const l = e % 32;
    const L = 64 * h;
    const lowByte = b.u8(L + l + (group % 2 === 1 ? 32 : 0));
    const low = group < 2 ? lowByte & 0xf : lowByte >> 4;
    const high = (b.u8(128 + 32 * h + l) >> (2 * group)) & 3;
    const scale = b.i8(192 + 8 * h + Math.floor(l / 16) + 2 * group);
    return b.half(208) * scale * ((low | (high << 4)) - 32);
  },
  q2_k: (b, e) => {
    const n = Math.floor(e / 128);
    const j = Math.floor((e % 128) / 32);
    const l = e % 32;
    const s = b.u8(8 * n + 2 * j + (l >= 16 ? 1 : 0));
    const q = (b.u8(16 + 32 * n + l) >> (2 * j)) & 3;
    return b.half(80) * (s & 0xf) * q - b.half(82) * (s >> 4);
  },
  q3_k: (b, e) => {
    // ggml's formulation: three LE u32 words of scales reshuffled into sixteen 6-bit values.
    const aux = [b.u32(96), b.u32(100), b.u32(104), 0];
    const tmp = aux[2]!;
    const k1 = 0x03030303;
    const k2 = 0x0f0f0f0f;
    const words = [
      ((aux[0]! & k2) | (((tmp >>> 0) & k1) << 4)) >>> 0,
      ((aux[1]! & k2) | (((tmp >>> 2) & k1) << 4)) >>> 0,
      (((aux[0]! >>> 4) & k2) | (((tmp >>> 4) & k1) << 4)) >>> 0,
      (((aux[1]! >>> 4) & k2) | (((tmp >>> 6) & k1) << 4)) >>> 0,
    ];
    const sub = Math.floor(e / 16);
    const scale = ((words[sub >> 2]! >>> (8 * (sub & 3))) & 0xff) - 32;
    const n = Math.floor(e / 128);
    const j = Math.floor((e % 128) / 32);
    const l = e % 32;
    const low = (b.u8(32 + 32 * n + l) >> (2 * j)) & 3;
    const hbit = (b.u8(l) >> (4 * n + j)) & 1;
    return b.half(108) * scale * (low - (hbit ? 0 : 4));
  },
  q8_k: (b, e) => b.f32(0) * b.i8(4 + e),
  iq4_nl: (b, e) => b.half(0) * IQ4_VALUES[nibble(b, 2, e)]!,
  iq4_xs: (b, e) => {
    const ib = Math.floor(e / 32);
    const scalesH = b.view.getUint16(2, true);
    const ls = ((b.u8(4 + Math.floor(ib / 2)) >> (4 * (ib % 2))) & 15) | (((scalesH >> (2 * ib)) & 3) << 4);
    return b.half(0) * (ls - 32) * IQ4_VALUES[nibble(b, 8 + 16 * ib, e % 32)]!;
  },
};

/** Where each format keeps its f16 fields (so random bytes there can be replaced by finite values). */
const halfFields: Record<string, number[]> = {
  q4_0: [0], q4_1: [0, 2], q5_0: [0], q5_1: [0, 2], q8_0: [0],
  q4_k: [0, 2], q5_k: [0, 2], q6_k: [208], q2_k: [80, 82], q3_k: [108], q8_k: [],
  iq4_nl: [0], iq4_xs: [0],
};

function randomBlocks(dtype: DType, blocks: number, rand: () => number): Uint8Array {
  const info = dtypeInfo(dtype);
  const bytes = new Uint8Array(blocks * info.blockBytes);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256);
  for (let b = 0; b < blocks; b++) {
    const at = b * info.blockBytes;
    const positive = dtype.endsWith('_k'); // k-quant super-scales are non-negative in practice
    for (const o of halfFields[dtype]!) setHalf(bytes, at + o, randomHalf(rand, positive));
    if (dtype === 'q8_k') new DataView(bytes.buffer).setFloat32(at, (rand() - 0.5) * 0.1, true);
  }
  return bytes;
}

for (const dtype of Object.keys(refs) as DType[]) {
  test(`${dtype}: random blocks decode exactly as the spec formulas`, () => {
    const info = dtypeInfo(dtype);
    const rand = seeded(dtype.length * 1000 + dtype.charCodeAt(1));
    const blocks = 6;
    const bytes = randomBlocks(dtype, blocks, rand);
    // Decode from an odd offset inside a larger buffer to exercise unaligned reads.
    const padded = new Uint8Array(bytes.length + 3);
    padded.set(bytes, 1);
    const src = padded.subarray(1, 1 + bytes.length);
    const out = dequantize(dtype, src, blocks * info.blockElements);
    assert.equal(out.length, blocks * info.blockElements);
    for (let b = 0; b < blocks; b++) {
      const blk = new Block(src, b * info.blockBytes);
      for (let e = 0; e < info.blockElements; e++) {
        const expected = Math.fround(refs[dtype]!(blk, e));
        assert.equal(out[b * info.blockElements + e], expected, `${dtype} block ${b} element ${e}`);
      }
    }
  });
}

test('scalar formats decode element by element (f32, f16, bf16, fp8_e4m3)', () => {
  const rand = seeded(5);
  const n = 257;
  const bytes = new Uint8Array(n * 4 + 1);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256);
  const src = bytes.subarray(1); // odd offset
  const view = new DataView(src.buffer, src.byteOffset);
  const same = (a: number, b: number, what: string) =>
    Number.isNaN(b) ? assert.ok(Number.isNaN(a), what) : assert.equal(a, b, what);
  const f32 = dequantize('f32', src, n);
  const f16 = dequantize('f16', src, n);
  const bf16 = dequantize('bf16', src, n);
  const fp8 = dequantize('fp8_e4m3', src, n);
  for (let i = 0; i < n; i++) {
    same(f32[i]!, view.getFloat32(4 * i, true), `f32 ${i}`);
    same(f16[i]!, halfValue(view.getUint16(2 * i, true)), `f16 ${i}`);
    same(bf16[i]!, new DataView(new Uint8Array([0, 0, src[2 * i]!, src[2 * i + 1]!]).buffer).getFloat32(0, true), `bf16 ${i}`);
    const byte = src[i]!;
    const e = (byte >> 3) & 15;
    const m = byte & 7;
    const mag = e === 15 && m === 7 ? NaN : e === 0 ? (m / 8) * 2 ** -6 : (1 + m / 8) * 2 ** (e - 7);
    same(fp8[i]!, byte & 0x80 ? -mag : mag, `fp8 ${i}`);
  }
});

test('q4_0 hand-built block: low nibbles are elements 0..15, high nibbles 16..31', () => {
  const blk = new Uint8Array(18);
  setHalf(blk, 0, 0x3800); // d = 0.5
  for (let j = 0; j < 16; j++) blk[2 + j] = j | ((15 - j) << 4);
  const y = dequantize('q4_0', blk, 32);
  for (let j = 0; j < 16; j++) {
    assert.equal(y[j], (j - 8) * 0.5);
    assert.equal(y[j + 16], (7 - j) * 0.5);
  }
});

test('q5_0 hand-built block: qh bit j extends element j, bit j+16 element j+16', () => {
  const blk = new Uint8Array(22);
  setHalf(blk, 0, 0x3c00); // d = 1
  const qh = 0b1010_0000_0000_0001_1000_0000_0000_0011; // elements 0,1,15 and 16,29,31
  new DataView(blk.buffer).setUint32(2, qh >>> 0, true);
  for (let j = 0; j < 16; j++) blk[6 + j] = 0x53; // low nibble 3, high nibble 5
  const y = dequantize('q5_0', blk, 32);
  for (let i = 0; i < 32; i++) {
    const nib = i < 16 ? 3 : 5;
    const high = (qh >>> i) & 1;
    assert.equal(y[i], nib + 16 * high - 16, `element ${i}`);
  }
  assert.equal(y[0], 3);
  assert.equal(y[2], -13);
  assert.equal(y[31], 5);
});

test('q8_0 hand-built block: signed bytes times d', () => {
  const blk = new Uint8Array(34);
  setHalf(blk, 0, 0x3400); // d = 0.25
  const qs = [-128, -127, -1, 0, 1, 2, 64, 127];
  for (let j = 0; j < 32; j++) blk[2 + j] = qs[j % qs.length]! & 0xff;
  const y = dequantize('q8_0', blk, 32);
  for (let j = 0; j < 32; j++) assert.equal(y[j], qs[j % qs.length]! * 0.25);
});

test('q4_k hand-built block: 6-bit scales/mins packed per the spec table', () => {
  const sc = [1, 2, 3, 4, 17, 33, 49, 63];
  const mn = [5, 6, 7, 8, 20, 40, 60, 62];
  const blk = new Uint8Array(144);
  setHalf(blk, 0, 0x3c00); // d = 1
  setHalf(blk, 2, 0x3800); // dmin = 0.5
  for (let k = 0; k < 4; k++) {
    blk[4 + k] = sc[k]! | ((sc[k + 4]! >> 4) << 6);
    blk[8 + k] = mn[k]! | ((mn[k + 4]! >> 4) << 6);
    blk[12 + k] = (sc[k + 4]! & 0xf) | ((mn[k + 4]! & 0xf) << 4);
  }
  for (let c = 0; c < 4; c++) for (let l = 0; l < 32; l++) blk[16 + 32 * c + l] = ((l + c) & 15) | ((15 - (l & 15)) << 4);
  const y = dequantize('q4_k', blk, 256);
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) {
      assert.equal(y[64 * c + l], sc[2 * c]! * ((l + c) & 15) - 0.5 * mn[2 * c]!, `chunk ${c} low ${l}`);
      assert.equal(y[64 * c + 32 + l], sc[2 * c + 1]! * (15 - (l & 15)) - 0.5 * mn[2 * c + 1]!, `chunk ${c} high ${l}`);
    }
  }
});

test('q6_k hand-built block: value 6-bit codes land where the spec table says', () => {
  // Choose the code of every element, pack it by the table, check the decode.
  const code = (e: number) => (e * 7 + 3) & 63;
  const scales = Array.from({ length: 16 }, (_, s) => (s % 2 ? -1 : 1) * (s + 1));
  const blk = new Uint8Array(210);
  for (let h = 0; h < 2; h++) {
    for (let l = 0; l < 32; l++) {
      const q = [0, 1, 2, 3].map((g) => code(128 * h + 32 * g + l));
      blk[64 * h + l] = (q[0]! & 0xf) | ((q[2]! & 0xf) << 4);
      blk[64 * h + l + 32] = (q[1]! & 0xf) | ((q[3]! & 0xf) << 4);
      blk[128 + 32 * h + l] = (q[0]! >> 4) | ((q[1]! >> 4) << 2) | ((q[2]! >> 4) << 4) | ((q[3]! >> 4) << 6);
    }
  }
  for (let s = 0; s < 16; s++) blk[192 + s] = scales[s]! & 0xff;
  setHalf(blk, 208, 0x3800); // d = 0.5
  const y = dequantize('q6_k', blk, 256);
  for (let e = 0; e < 256; e++) assert.equal(y[e], 0.5 * scales[e >> 4]! * (code(e) - 32), `element ${e}`);
});
