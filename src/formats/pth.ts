/**
 * Reader for PyTorch checkpoints in the zip format of `torch.save` (torch ≥ 1.6):
 * a zip with `<archive>/data.pkl` (a pickle whose tensors refer to storages by
 * persistent id) and one record `<archive>/data/<key>` of raw little-endian
 * bytes per storage. Tensors come back as HostTensor, row-major (strided views
 * are materialised), dicts as Map. Nothing is executed: the pickle is read by
 * the restricted unpickler (pickle.ts), which allows only the globals a state
 * dict needs (torch's tensor rebuild functions and storage classes,
 * collections.OrderedDict) and refuses any other, naming it.
 *
 * Caps (hostile files): a deflated record (torch.save stores records
 * uncompressed, so only a crafted file deflates them) is inflated only when
 * the pickle refers to it, and never past the bytes its tensors need nor past
 * MAX_INFLATE_BYTES (512 MiB; `LIVEPORTRAIT_MAX_INFLATE_MB` raises it);
 * data.pkl is read up to MAX_PICKLE_BYTES (256 MiB).
 */
import { type DType, type HostData, type HostTensor, type StateDict, DTYPE_BYTES } from './host_tensor.js';
import { InputError } from '../errors.js';
import { type PickleCallable, PickleError, unpickleRestricted } from './pickle.js';
import { ZipError, ZipReader } from './zip.js';
import { DEFAULT_MAX_INFLATE_BYTES, maxInflateBytes } from '../limits.js';

/** The most bytes one deflated record may inflate to by default (LIVEPORTRAIT_MAX_INFLATE_MB raises it). */
export const MAX_INFLATE_BYTES = DEFAULT_MAX_INFLATE_BYTES;
/** The most bytes data.pkl may hold. */
export const MAX_PICKLE_BYTES = 256 * 2 ** 20;
/** The most elements one tensor may declare (2^31: 8 GiB of float32). */
export const MAX_TENSOR_ELEMENTS = 2 ** 31;

export class PthError extends InputError {
  constructor(file: string, what: string, cause?: unknown) {
    super(`${file}: ${what}`, cause !== undefined ? { cause } : undefined);
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
  let n = 1;
  for (const d of size) {
    if (!Number.isSafeInteger(d) || d < 0) throw new PthError(file, `malformed tensor record: size ${JSON.stringify(size)}`);
    n *= d;
    if (n > MAX_TENSOR_ELEMENTS) throw new PthError(file, `tensor of size ${JSON.stringify(size)} declares over ${MAX_TENSOR_ELEMENTS} elements; not a LivePortrait checkpoint`);
  }
  if (!Number.isSafeInteger(offset) || size.length > 64 || stride.some((d) => !Number.isSafeInteger(d))) throw new PthError(file, `malformed tensor record: offset ${offset}, stride ${JSON.stringify(stride)}`);
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
      if (n > Math.floor(bytes.length / item))
        throw new PthError(file, `tensor of size ${JSON.stringify(size)} is a view larger than its storage '${key}' (${Math.floor(bytes.length / item)} elements); not a LivePortrait checkpoint`);
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

/** The zip's directory, or a clear error for non-zip inputs. */
function openZip(bytes: Uint8Array, file: string): ZipReader {
  const isZip = bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
  if (!isZip) {
    if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] <= 5)
      throw new PthError(file, 'legacy (non-zip) PyTorch checkpoint format, not supported; re-save it with a recent torch (torch.save(torch.load(f), f), torch ≥ 1.6) or convert it to safetensors');
    throw new PthError(file, `not a PyTorch checkpoint: not a zip archive (${bytes.length} bytes, starts with ${JSON.stringify(String.fromCharCode(...bytes.subarray(0, 4)))}); download it again`);
  }
  return new ZipReader(bytes, file);
}

function asNumberArray(x: unknown, what: string, file: string): number[] {
  if (!Array.isArray(x) || !x.every((v) => typeof v === 'number' && Number.isInteger(v)))
    throw new PthError(file, `malformed tensor record: ${what} is ${JSON.stringify(x)}, not a tuple of integers`);
  return x as number[];
}

export interface PthOptions {
  /** The most bytes one deflated record may inflate to (default MAX_INFLATE_BYTES or LIVEPORTRAIT_MAX_INFLATE_MB). */
  maxInflateBytes?: number;
}

/** Parse checkpoint bytes; `file` names it in errors. Dicts are Maps, tensors HostTensor. */
export function parsePth(bytes: Uint8Array, file = 'checkpoint', opts: PthOptions = {}): unknown {
  try {
    return parsePthZip(openZip(bytes, file), file, opts.maxInflateBytes ?? maxInflateBytes());
  } catch (e) {
    if (e instanceof PthError) throw e;
    if (e instanceof ZipError || e instanceof PickleError) throw new PthError(file, e.message.startsWith(`${file}: `) ? e.message.slice(file.length + 2) : e.message);
    if (e instanceof InputError) throw new PthError(file, e.message);
    throw new PthError(file, `cannot read the checkpoint (${String((e as Error)?.message ?? e).split('\n')[0]}); download it again`, e);
  }
}

function parsePthZip(zip: ZipReader, file: string, maxInflate: number): unknown {
  const names = [...zip.entries.keys()];
  const pklName = names.find((k) => /^[^/]+\/data\.pkl$/.test(k)) ?? names.find((k) => k.endsWith('data.pkl'));
  if (!pklName) throw new PthError(file, `zip archive without data.pkl (entries: ${names.slice(0, 5).join(', ') || 'none'}); not a torch.save checkpoint`);
  const prefix = pklName.slice(0, -'data.pkl'.length);
  const orderName = `${prefix}byteorder`;
  if (zip.entries.has(orderName) && new TextDecoder().decode(zip.read(orderName, 64, 'a byte-order record')).trim() !== 'little')
    throw new PthError(file, 'big-endian checkpoint, not supported; re-save it on a little-endian machine');

  const storages = new Map<string, Storage>();
  const loadStorage = (pid: unknown): Storage => {
    if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5)
      throw new PthError(file, `unknown persistent id ${String(JSON.stringify(pid)).slice(0, 100)} in data.pkl; not a tensor storage`);
    const [, type, key, , count] = pid as [string, unknown, unknown, string, unknown];
    if (typeof key !== 'string') throw new PthError(file, 'malformed storage record in data.pkl: its key is not a string');
    if (!(type instanceof StorageType)) throw new PthError(file, `storage '${key}' has an unsupported type`);
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0 || count > MAX_TENSOR_ELEMENTS)
      throw new PthError(file, `storage '${key}' declares ${String(count)} elements; not a LivePortrait checkpoint`);
    let s = storages.get(key);
    if (!s) {
      const recName = `${prefix}data/${key}`;
      if (!zip.entries.has(recName)) throw new PthError(file, `missing storage record '${recName}' in the zip; the file is incomplete or corrupt, download it again`);
      const need = count * DTYPE_BYTES[type.dtype];
      // Stored records are views of the file; deflated ones (only crafted files have them) are capped.
      const rec = zip.read(recName, zip.entries.get(recName)!.method === 0 ? Infinity : maxInflate, 'the inflate cap (raise it with LIVEPORTRAIT_MAX_INFLATE_MB)');
      if (rec.length < need) throw new PthError(file, `truncated: storage record '${recName}' has ${rec.length} bytes, ${need} expected; download it again`);
      // Aligned (a copy where needed: Buffer.slice would be a view), so typed views of any width are possible.
      s = { key, dtype: type.dtype, bytes: rec.byteOffset % 8 === 0 ? rec : new Uint8Array(rec) };
      storages.set(key, s);
    }
    return s;
  };

  const rebuildTensor = ([storage, offset, size, stride]: unknown[]): HostTensor => {
    if (typeof storage !== 'object' || storage === null || !('bytes' in storage)) throw new PthError(file, 'malformed tensor record: no storage');
    if (typeof offset !== 'number') throw new PthError(file, `malformed tensor record: storage offset ${String(offset).slice(0, 40)}`);
    const sz = asNumberArray(size, 'size', file);
    const st = asNumberArray(stride, 'stride', file);
    if (st.length !== sz.length) throw new PthError(file, `malformed tensor record: size ${JSON.stringify(sz)} with stride ${JSON.stringify(st)}`);
    return materialise(file, storage as Storage, offset, sz, st);
  };

  const globals = new Map<string, PickleCallable>();
  globals.set('collections.OrderedDict', () => new Map());
  globals.set('torch._utils._rebuild_tensor_v2', rebuildTensor);
  globals.set('torch._utils._rebuild_tensor', rebuildTensor);
  // nn.Parameter wraps a tensor: keep the tensor.
  globals.set('torch._utils._rebuild_parameter', ([data]) => data);
  globals.set('torch._utils._rebuild_parameter_with_state', ([data]) => data);
  // The storage classes are only named inside persistent ids, never called.
  for (const [name, dtype] of Object.entries(STORAGE_DTYPES)) {
    const marker = Object.assign(() => undefined, { storageType: new StorageType(name, dtype) });
    globals.set(`torch.${name}`, marker);
  }
  const unwrap = (v: unknown) => (typeof v === 'function' && 'storageType' in v ? (v as { storageType: StorageType }).storageType : v);

  const pkl = zip.read(pklName, MAX_PICKLE_BYTES, 'the data.pkl cap');
  return unpickleRestricted(pkl, file, {
    globals,
    persistentLoad: (pid) => loadStorage(Array.isArray(pid) ? pid.map(unwrap) : pid),
  });
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
  const seen = new Set<unknown>();
  const walk = (x: unknown, prefix: string, depth = 0): void => {
    if (isHostTensor(x)) {
      if (sd.has(prefix)) throw new PthError(file, `duplicate key '${prefix}' after removing 'module.' prefixes`);
      sd.set(prefix, x);
      return;
    }
    if (!(x instanceof Map)) return;
    // A pickle can make a dict that holds itself, or nest without end: not a state dict.
    if (seen.has(x) || depth > 64) throw new PthError(file, 'not a state dict: its dicts nest over 64 levels or hold themselves');
    seen.add(x);
    for (const [k, v] of x) {
      if (typeof k !== 'string') continue;
      const key = stripModulePrefix(k);
      walk(v, prefix ? `${prefix}.${key}` : key, depth + 1);
    }
  };
  if (isHostTensor(obj) || !(obj instanceof Map)) throw new PthError(file, 'not a state dict: the checkpoint holds no dict of tensors');
  walk(obj, '');
  if (sd.size === 0) throw new PthError(file, 'not a state dict: the checkpoint holds no tensors');
  return sd;
}
