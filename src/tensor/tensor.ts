import { type DType, byteSize } from './dtype.js';

/**
 * A dense f32 tensor: a Float32Array with a shape and strides (in elements), and an offset.
 * Views (transpose, slice) share storage; kernels take contiguous buffers (`contiguous()`).
 */
export class Tensor {
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly data: Float32Array;

  constructor(data: Float32Array, shape: readonly number[], strides?: readonly number[], offset = 0) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new Error(`invalid tensor dimension ${d} in shape [${shape.join(', ')}]`);
    }
    this.data = data;
    this.shape = [...shape];
    this.strides = strides ? [...strides] : contiguousStrides(shape);
    this.offset = offset;
    if (!strides && offset + sizeOf(shape) > data.length) {
      throw new Error(`shape [${shape.join(', ')}] needs ${sizeOf(shape)} elements, storage has ${data.length - offset}`);
    }
  }

  static zeros(shape: readonly number[]): Tensor {
    return new Tensor(new Float32Array(sizeOf(shape)), shape);
  }

  static from(values: ArrayLike<number>, shape: readonly number[]): Tensor {
    return new Tensor(Float32Array.from(values), shape);
  }

  get size(): number {
    return sizeOf(this.shape);
  }

  get rank(): number {
    return this.shape.length;
  }

  isContiguous(): boolean {
    const expected = contiguousStrides(this.shape);
    return this.strides.every((s, i) => this.shape[i] === 1 || s === expected[i]);
  }

  /** The values in row-major order, as a Float32Array of exactly `size` elements (shared when possible). */
  contiguousData(): Float32Array {
    if (this.isContiguous()) return this.data.subarray(this.offset, this.offset + this.size);
    const out = new Float32Array(this.size);
    const index = new Array<number>(this.rank).fill(0);
    for (let i = 0; i < out.length; i++) {
      let at = this.offset;
      for (let d = 0; d < this.rank; d++) at += index[d]! * this.strides[d]!;
      out[i] = this.data[at]!;
      for (let d = this.rank - 1; d >= 0; d--) {
        if (++index[d]! < this.shape[d]!) break;
        index[d] = 0;
      }
    }
    return out;
  }

  contiguous(): Tensor {
    return this.isContiguous() ? this : new Tensor(this.contiguousData(), this.shape);
  }

  reshape(shape: readonly number[]): Tensor {
    if (sizeOf(shape) !== this.size) throw new Error(`cannot reshape [${this.shape.join(', ')}] to [${shape.join(', ')}]`);
    return new Tensor(this.contiguousData(), shape);
  }

  /** Swap two axes (a view). */
  transpose(a = this.rank - 2, b = this.rank - 1): Tensor {
    const shape = [...this.shape];
    const strides = [...this.strides];
    [shape[a], shape[b]] = [shape[b]!, shape[a]!];
    [strides[a], strides[b]] = [strides[b]!, strides[a]!];
    return new Tensor(this.data, shape, strides, this.offset);
  }

  get(...index: number[]): number {
    let at = this.offset;
    for (let d = 0; d < this.rank; d++) at += index[d]! * this.strides[d]!;
    return this.data[at]!;
  }
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d]!;
  }
  return strides;
}

/**
 * A 2-D weight matrix [rows, cols] kept in its storage dtype (the layout of nn.Linear and of
 * GGUF tensors: each row holds `cols` consecutive values, in whole blocks). Linear layers compute
 * y = x · Wᵀ, so `rows` is the output size and `cols` the input size.
 *
 * For fp8_e4m3, `blockScales` holds one f32 scale per 128x128 block, row-major over
 * [ceil(rows/128), ceil(cols/128)], multiplied into the values (HF's `weight_scale_inv`).
 */
export interface WeightMatrix {
  readonly dtype: DType;
  readonly rows: number;
  readonly cols: number;
  readonly data: Uint8Array;
  readonly blockScales?: Float32Array;
}

export function weightMatrix(dtype: DType, rows: number, cols: number, data: Uint8Array, blockScales?: Float32Array): WeightMatrix {
  const need = rows * byteSize(dtype, cols);
  if (data.byteLength < need) throw new Error(`${dtype} weight [${rows}, ${cols}] needs ${need} bytes, got ${data.byteLength}`);
  if (dtype === 'fp8_e4m3') {
    const blocks = Math.ceil(rows / 128) * Math.ceil(cols / 128);
    if (!blockScales || blockScales.length < blocks) throw new Error(`fp8 weight [${rows}, ${cols}] needs ${blocks} block scales`);
  }
  return { dtype, rows, cols, data, blockScales };
}

/** Bytes of one row of a weight matrix. */
export function rowBytes(w: Pick<WeightMatrix, 'dtype' | 'cols'>): number {
  return byteSize(w.dtype, w.cols);
}
