/**
 * Reader for PyTorch checkpoints in the zip format of `torch.save` (torch ≥ 1.6):
 * a zip with `<archive>/data.pkl` (a pickle whose tensors refer to storages by
 * persistent id) and one record `<archive>/data/<key>` of raw little-endian
 * bytes per storage. Tensors come back as HostTensor, row-major (strided views
 * are materialised), dicts as Map. Nothing is executed: only the few globals a
 * state dict needs are understood; other globals become opaque objects.
 */
import { unzipSync } from 'fflate';
import { NameRegistry, Parser } from 'pickleparser';
import { type DType, type HostData, type HostTensor, type StateDict, DTYPE_BYTES, numel } from './host_tensor.js';
import { InputError } from '../errors.js';

export class PthError extends InputError {
  constructor(file: string, what: string) {
    super(`${file}: ${what}`);
  }
}


/** torch.<X>Storage class names → dtype. */
const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

/** The storage class as the pickle names it (the GLOBAL `torch FloatStorage`). */
class StorageType {
  constructor(
    readonly name: string,
    readonly dtype: DType,
  ) {}
}

/** A storage record of the archive: raw bytes of `numel` elements of `dtype`. */
interface Storage {
  key: string;
  dtype: DType;
  bytes: Uint8Array;
}

export function isHostTensor(x: unknown): x is HostTensor {
  return typeof x === 'object' && x !== null && 'dtype' in x && 'shape' in x && 'data' in x && ArrayBuffer.isView((x as HostTensor).data);
}

/** Typed array of `n` elements of `dtype` over `buf` from byte `at` (aligned). */
function typed(dtype: DType, buf: ArrayBufferLike, at: number, n: number): HostData {
  switch (dtype) {
    case 'F64':
      return new Float64Array(buf, at, n);
    case 'F32':
      return new Float32Array(buf, at, n);
    case 'F16':
    case 'BF16':
      return new Uint16Array(buf, at, n);
    case 'I64':
      return new BigInt64Array(buf, at, n);
    case 'I32':
      return new Int32Array(buf, at, n);
    case 'I16':
      return new Int16Array(buf, at, n);
    case 'I8':
      return new Int8Array(buf, at, n);
    case 'U8':
    case 'BOOL':
      return new Uint8Array(buf, at, n);
  }
}

/** Whether `stride` is the row-major stride of `size` (dims of size 1 ignored). */
function isContiguous(size: readonly number[], stride: readonly number[]): boolean {
  let expect = 1;
  for (let d = size.length - 1; d >= 0; d--) {
    if (size[d] !== 1 && stride[d] !== expect) return false;
    expect *= size[d];
  }
  return true;
}

/**
 * The tensor view (offset, size, stride, in elements) of a storage, row-major:
 * a view of the storage where it is contiguous, else gathered into a fresh
 * buffer, whole elements copied as integers so NaN payloads and 64-bit
 * integers survive bit for bit.
 */
export function materialise(file: string, storage: Storage, offset: number, size: number[], stride: number[]): HostTensor {
  const { dtype, bytes, key } = storage;
  const item = DTYPE_BYTES[dtype];
  const n = numel(size);
  let out = new Uint8Array(0);
  if (n > 0) {
    let last = offset;
    for (let d = 0; d < size.length; d++) last += (size[d] - 1) * stride[d];
    if (offset < 0 || size.some((s, d) => stride[d] < 0) || (last + 1) * item > bytes.length)
      throw new PthError(file, `truncated: tensor needs elements ${offset}..${last} of storage '${key}' but the record holds ${Math.floor(bytes.length / item)}; the file is incomplete, download it again`);
    if (isContiguous(size, stride)) {
      // Storages are 8-byte aligned (see loadStorage): a typed view is possible.
      return { dtype, shape: [...size], data: typed(dtype, bytes.buffer, bytes.byteOffset + offset * item, n) };
    } else {
      out = new Uint8Array(n * item);
      // Gather element by element with an odometer over the dims.
      const words = item === 8 ? 2 : 1;
      const unit = item === 8 ? 4 : item;
      const src = unit === 4 ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2) : unit === 2 ? new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 1) : bytes;
      const dst = unit === 4 ? new Uint32Array(out.buffer) : unit === 2 ? new Uint16Array(out.buffer) : out;
      const idx = new Array<number>(size.length).fill(0);
      let pos = offset;
      for (let i = 0; i < n; i++) {
        for (let w = 0; w < words; w++) dst[i * words + w] = src[pos * words + w];
        for (let d = size.length - 1; d >= 0; d--) {
          idx[d]++;
          pos += stride[d];
          if (idx[d] < size[d]) break;
          pos -= stride[d] * size[d];
          idx[d] = 0;
        }
      }
    }
  }
  return { dtype, shape: [...size], data: typed(dtype, out.buffer, 0, n) };
}

/** The zip's entries, keyed by name, or a clear error for non-zip inputs. */
function unzip(bytes: Uint8Array, file: string): Record<string, Uint8Array> {
  const isZip = bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
  if (!isZip) {
    if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] <= 5)
      throw new PthError(file, 'legacy (non-zip) PyTorch checkpoint format, not supported; re-save it with a recent torch (torch.save(torch.load(f), f), torch ≥ 1.6) or convert it to safetensors');
    throw new PthError(file, `not a PyTorch checkpoint: not a zip archive (${bytes.length} bytes, starts with ${JSON.stringify(String.fromCharCode(...bytes.subarray(0, 4)))}); download it again`);
  }
  try {
    return unzipSync(bytes);
  } catch (e) {
    throw new PthError(file, `truncated or corrupt zip archive (${(e as Error).message}); download it again`);
  }
}

function asNumberArray(x: unknown, what: string, file: string): number[] {
  if (!Array.isArray(x) || !x.every((v) => typeof v === 'number' && Number.isInteger(v)))
    throw new PthError(file, `malformed tensor record: ${what} is ${JSON.stringify(x)}, not a tuple of integers`);
  return x as number[];
}

/** Parse checkpoint bytes; `file` names it in errors. Dicts are Maps, tensors HostTensor. */
export function parsePth(bytes: Uint8Array, file = 'checkpoint'): unknown {
  const entries = unzip(bytes, file);
  const pklName = Object.keys(entries).find((k) => /^[^/]+\/data\.pkl$/.test(k)) ?? Object.keys(entries).find((k) => k.endsWith('data.pkl'));
  if (!pklName) throw new PthError(file, `zip archive without data.pkl (entries: ${Object.keys(entries).slice(0, 5).join(', ') || 'none'}); not a torch.save checkpoint`);
  const prefix = pklName.slice(0, -'data.pkl'.length);
  const order = entries[`${prefix}byteorder`];
  if (order && new TextDecoder().decode(order).trim() !== 'little') throw new PthError(file, 'big-endian checkpoint, not supported; re-save it on a little-endian machine');

  const storages = new Map<string, Storage>();
  const loadStorage = (pid: unknown): Storage => {
    if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5)
      throw new PthError(file, `unknown persistent id ${JSON.stringify(pid)} in data.pkl; not a tensor storage`);
    const [, type, key, , count] = pid as [string, unknown, string, string, number];
    if (!(type instanceof StorageType)) throw new PthError(file, `storage '${key}' has unsupported type ${String((type as { __name__?: string })?.__name__ ?? type)}`);
    let s = storages.get(key);
    if (!s) {
      const rec = entries[`${prefix}data/${key}`];
      if (!rec) throw new PthError(file, `missing storage record '${prefix}data/${key}' in the zip; the file is incomplete or corrupt, download it again`);
      const need = Number(count) * DTYPE_BYTES[type.dtype];
      if (rec.length < need) throw new PthError(file, `truncated: storage record '${prefix}data/${key}' has ${rec.length} bytes, ${need} expected; download it again`);
      // Aligned (a copy where needed: Buffer.slice would be a view), so typed views of any width are possible.
      s = { key, dtype: type.dtype, bytes: rec.byteOffset % 8 === 0 ? rec : new Uint8Array(rec) };
      storages.set(key, s);
    }
    return s;
  };

  const rebuildTensor = (storage: unknown, offset: unknown, size: unknown, stride: unknown): HostTensor => {
    if (typeof storage !== 'object' || storage === null || !('bytes' in storage)) throw new PthError(file, 'malformed tensor record: no storage');
    if (typeof offset !== 'number') throw new PthError(file, `malformed tensor record: storage offset ${JSON.stringify(offset)}`);
    const sz = asNumberArray(size, 'size', file);
    const st = asNumberArray(stride, 'stride', file);
    if (st.length !== sz.length) throw new PthError(file, `malformed tensor record: size ${JSON.stringify(sz)} with stride ${JSON.stringify(st)}`);
    return materialise(file, storage as Storage, offset, sz, st);
  };

  const names = new NameRegistry();
  names.register('collections', 'OrderedDict', () => new Map());
  names.register('torch._utils', '_rebuild_tensor_v2', (s: unknown, o: unknown, size: unknown, stride: unknown) => rebuildTensor(s, o, size, stride));
  names.register('torch._utils', '_rebuild_tensor', (s: unknown, o: unknown, size: unknown, stride: unknown) => rebuildTensor(s, o, size, stride));
  // nn.Parameter wraps a tensor: keep the tensor.
  names.register('torch._utils', '_rebuild_parameter', (data: unknown) => data);
  names.register('torch._utils', '_rebuild_parameter_with_state', (data: unknown) => data);
  for (const [name, dtype] of Object.entries(STORAGE_DTYPES)) names.register('torch', name, Object.assign(() => undefined, { storageType: new StorageType(name, dtype) }));

  // pickleparser hands the registered function itself to BINPERSID; unwrap the marker.
  const parser = new Parser({
    nameResolver: names,
    persistentResolver: {
      resolve: (pid: unknown) => {
        const p = Array.isArray(pid) ? pid.map((v) => (typeof v === 'function' && 'storageType' in v ? (v as { storageType: StorageType }).storageType : v)) : pid;
        return loadStorage(p);
      },
    },
    unpicklingTypeOfDictionary: 'Map',
  });
  try {
    return parser.parse(entries[pklName]);
  } catch (e) {
    if (e instanceof PthError) throw e;
    const msg = (e as Error).message;
    if (e instanceof RangeError || /end of file/i.test(msg)) throw new PthError(file, `truncated data.pkl (${msg}); download the file again`);
    throw new PthError(file, `cannot unpickle data.pkl: ${msg}`);
  }
}

/** Strip one leading `module.` (the DataParallel prefix), as the reference's loader does. */
export function stripModulePrefix(key: string): string {
  return key.startsWith('module.') ? key.slice('module.'.length) : key;
}

/**
 * Flatten a nested dict of tensors into a state dict: keys joined with '.',
 * each level's key without a leading `module.`. Non-tensor leaves (epochs,
 * `_metadata`) are skipped.
 */
export function flattenStateDict(obj: unknown, file = 'checkpoint'): StateDict {
  const sd: StateDict = new Map();
  const walk = (x: unknown, prefix: string): void => {
    if (isHostTensor(x)) {
      if (sd.has(prefix)) throw new PthError(file, `duplicate key '${prefix}' after removing 'module.' prefixes`);
      sd.set(prefix, x);
      return;
    }
    const items: [unknown, unknown][] | undefined = x instanceof Map ? [...x.entries()] : undefined;
    if (!items) return;
    for (const [k, v] of items) {
      if (typeof k !== 'string') continue;
      const key = stripModulePrefix(k);
      walk(v, prefix ? `${prefix}.${key}` : key);
    }
  };
  if (isHostTensor(obj) || !(obj instanceof Map)) throw new PthError(file, 'not a state dict: the checkpoint holds no dict of tensors');
  walk(obj, '');
  if (sd.size === 0) throw new PthError(file, 'not a state dict: the checkpoint holds no tensors');
  return sd;
}
