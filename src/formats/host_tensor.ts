/**
 * Tensors on the host, in the layout they were stored in (PyTorch's, for
 * checkpoints and fixtures). Models convert them to tfjs tensors in their own
 * layout once, at load time.
 */
export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Record<DType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export type HostData = Float64Array | Float32Array | Uint16Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

export interface HostTensor {
  dtype: DType;
  shape: number[];
  /** Raw values; F16 and BF16 are kept as their 16-bit patterns (see `toFloat32`). */
  data: HostData;
}

/** A state dict: official checkpoint key → tensor. */
export type StateDict = Map<string, HostTensor>;

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

export function bf16ToF32(h: number): number {
  u32buf[0] = h << 16;
  return f32buf[0];
}

/** Round-to-nearest-even float32 → bfloat16 bit pattern. */
export function f32ToBf16(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0];
  if ((u & 0x7f800000) === 0x7f800000 && u & 0x7fffff) return 0x7fc0; // NaN
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Round-to-nearest-even float32 → float16 bit pattern. */
export function f32ToF16(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}

/** Any host tensor as float32 values (a view where it already is float32). */
export function toFloat32(t: HostTensor): Float32Array {
  const d = t.data;
  if (t.dtype === 'F32') return d as Float32Array;
  const out = new Float32Array(d.length);
  if (t.dtype === 'F16') for (let i = 0; i < d.length; i++) out[i] = f16ToF32((d as Uint16Array)[i]);
  else if (t.dtype === 'BF16') for (let i = 0; i < d.length; i++) out[i] = bf16ToF32((d as Uint16Array)[i]);
  else if (t.dtype === 'I64') for (let i = 0; i < d.length; i++) out[i] = Number((d as BigInt64Array)[i]);
  else for (let i = 0; i < d.length; i++) out[i] = Number(d[i]);
  return out;
}

export function f32(shape: number[], data: Float32Array): HostTensor {
  return { dtype: 'F32', shape, data };
}
