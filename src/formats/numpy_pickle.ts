/**
 * Python pickles of numpy arrays (the reference's motion templates and
 * lip_array.pkl), read with the restricted unpickler (pickle.ts) and a small
 * reconstruction of numpy's ndarray and dtype: the only globals allowed are
 * numpy's array reconstruction, scalar and dtype (and `_codecs.encode`, which
 * protocol-2 pickles use for bytes); any other is refused, naming it.
 */
import { InputError } from '../errors.js';
import { f16ToF32 } from './host_tensor.js';
import { type PickleCallable, PickleError, unpickleRestricted } from './pickle.js';

/** Largest numpy array a template or lip array may declare (elements); real ones hold at most a few thousand. */
export const MAX_NUMPY_ELEMENTS = 1 << 28;

function checkShape(shape: unknown): number[] {
  if (!Array.isArray(shape) || shape.length > 32 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new InputError(`numpy array with a bad shape ${String(shape).slice(0, 80)}`);
  let n = 1;
  for (const d of shape as number[]) {
    n *= d;
    if (n > MAX_NUMPY_ELEMENTS) throw new InputError(`numpy array of shape [${shape.join(', ')}] is over ${MAX_NUMPY_ELEMENTS} elements; not a motion template or lip array`);
  }
  return [...(shape as number[])];
}

/** A numpy array rebuilt from a pickle: dtype, shape and values. */
export class NdArray {
  dtype = '';
  shape: number[] = [];
  data: Float64Array | Float32Array | Int32Array | Uint8Array = new Float32Array(0);

  /** ndarray.__setstate__((version, shape, dtype, is_fortran, rawdata)). */
  __setstate__(state: unknown): void {
    if (!Array.isArray(state) || state.length < 5) throw new InputError('numpy array with a malformed state (not (version, shape, dtype, is_fortran, data))');
    const [, shape, dtype, fortran, raw] = state as [number, number[], NpDtype, boolean, Uint8Array | unknown[]];
    this.shape = checkShape(shape);
    if (!(dtype instanceof NpDtype)) throw new InputError('numpy array with an unknown dtype object');
    if (!(raw instanceof Uint8Array) && !ArrayBuffer.isView(raw)) throw new InputError(`numpy array of dtype '${dtype.descr}' holds Python objects, not numbers`);
    const bytes = raw as Uint8Array;
    this.dtype = dtype.descr;
    const n = this.shape.reduce((a, b) => a * b, 1);
    this.data = decodeNumbers(bytes, dtype, n);
    if (fortran && this.shape.length > 1) this.data = fortranToC(this.data, this.shape);
  }

  toFloat32(): Float32Array {
    return this.data instanceof Float32Array ? this.data : Float32Array.from(this.data as ArrayLike<number>);
  }
}

/** numpy.dtype(descr, align, copy) with __setstate__ giving the byte order. */
export class NpDtype {
  order = '<';
  constructor(readonly descr: string) {}
  __setstate__(state: unknown): void {
    if (Array.isArray(state) && typeof state[1] === 'string') this.order = state[1];
  }
}

function decodeNumbers(bytes: Uint8Array, dt: NpDtype, n: number): Float64Array | Float32Array | Int32Array | Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new InputError(`numpy array of ${n} elements`);
  const kind = dt.descr.replace(/^[<>=|]/, '');
  const little = !(dt.order === '>' || dt.descr.startsWith('>'));
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = { f8: 8, f4: 4, f2: 2, i8: 8, i4: 4, i2: 2, i1: 1, u1: 1, b1: 1, u2: 2, u4: 4, u8: 8 }[kind];
  if (!size) throw new InputError(`numpy dtype '${dt.descr}' is not supported in motion templates`);
  if (bytes.byteLength < n * size) throw new InputError(`numpy array of ${n} x ${kind} has only ${bytes.byteLength} bytes`);
  const read: (o: number) => number = {
    f8: (o: number) => dv.getFloat64(o, little),
    f4: (o: number) => dv.getFloat32(o, little),
    f2: (o: number) => f16ToF32(dv.getUint16(o, little)),
    i8: (o: number) => Number(dv.getBigInt64(o, little)),
    u8: (o: number) => Number(dv.getBigUint64(o, little)),
    i4: (o: number) => dv.getInt32(o, little),
    u4: (o: number) => dv.getUint32(o, little),
    i2: (o: number) => dv.getInt16(o, little),
    u2: (o: number) => dv.getUint16(o, little),
    i1: (o: number) => dv.getInt8(o),
    u1: (o: number) => dv.getUint8(o),
    b1: (o: number) => dv.getUint8(o),
  }[kind as 'f8'];
  const out = kind === 'f4' || kind === 'f2' ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = read(i * size);
  return out;
}

function fortranToC<T extends Float64Array | Float32Array | Int32Array | Uint8Array>(data: T, shape: number[]): T {
  const out = new (data.constructor as new (n: number) => T)(data.length);
  const nd = shape.length;
  const idx = new Array(nd).fill(0);
  for (let c = 0; c < data.length; c++) {
    let f = 0;
    let stride = 1;
    for (let k = 0; k < nd; k++) {
      f += idx[k] * stride;
      stride *= shape[k];
    }
    out[c] = data[f];
    for (let k = nd - 1; k >= 0; k--) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

/** The globals numpy pickles need, and nothing else. */
function numpyGlobals(): Map<string, PickleCallable> {
  const g = new Map<string, PickleCallable>();
  const dtypeOf = (x: unknown): NpDtype => {
    if (!(x instanceof NpDtype)) throw new InputError('numpy scalar without a dtype');
    return x;
  };
  for (const mod of ['numpy.core.multiarray', 'numpy._core.multiarray']) {
    g.set(`${mod}._reconstruct`, () => new NdArray());
    // numpy scalars: scalar(dtype, bytes)
    g.set(`${mod}.scalar`, ([dt, raw]) => {
      if (!(raw instanceof Uint8Array)) throw new InputError('numpy scalar without its bytes');
      return decodeNumbers(raw, dtypeOf(dt), 1)[0];
    });
  }
  g.set('numpy.dtype', ([descr]) => {
    if (typeof descr !== 'string') throw new InputError('numpy dtype without a type string');
    return new NpDtype(descr);
  });
  g.set('numpy.ndarray', () => 'numpy.ndarray');
  // Protocol 2 writes Python 3 bytes as _codecs.encode(str, 'latin1').
  g.set('_codecs.encode', ([s, enc]) => {
    if (typeof s !== 'string' || (enc !== 'latin1' && enc !== 'latin-1')) throw new InputError('_codecs.encode other than latin1 bytes');
    return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
  });
  return g;
}

/** Unpickle bytes holding plain Python data and numpy arrays. */
export function unpickle(bytes: Uint8Array, name = 'pickle'): unknown {
  if (bytes.length < 2 || bytes[0] !== 0x80) throw new InputError(`${name}: not a Python pickle (protocol 2+ header missing)`);
  try {
    return unpickleRestricted(bytes, name, { globals: numpyGlobals() });
  } catch (e) {
    if (e instanceof PickleError) throw e;
    if (e instanceof InputError) throw new InputError(`${name}: ${e.message}`);
    throw new InputError(`${name}: unreadable pickle (${String((e as Error)?.message ?? e).split('\n')[0]})`, { cause: e });
  }
}

/** Read a numpy array pickled on its own (e.g. the reference's lip_array.pkl) as float32. */
export function readNumpyPickle(bytes: Uint8Array, name = 'array.pkl'): { shape: number[]; data: Float32Array } {
  const obj = unpickle(bytes, name);
  if (!(obj instanceof NdArray)) throw new InputError(`${name}: the pickle does not hold a numpy array`);
  return { shape: obj.shape, data: obj.toFloat32() };
}
