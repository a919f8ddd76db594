/**
 * safetensors: 8-byte little-endian header length N, N bytes of JSON header
 * ({name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?}), then the
 * raw little-endian data, offsets relative to the end of the header.
 *
 * Caps (hostile files): the header is at most MAX_HEADER_BYTES (100 MiB, as
 * the reference implementation), and a tensor's element count must be a safe
 * integer that matches its byte range, so no length or shape in a file can
 * make this reader allocate more than the file's own size.
 */
import { type DType, type HostTensor, type HostData, DTYPE_BYTES, numel } from './host_tensor.js';
import { InputError } from '../errors.js';


export interface SafetensorsFile {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

/** The largest header read (the reference safetensors library's limit too). */
export const MAX_HEADER_BYTES = 100 * 2 ** 20;

export class SafetensorsError extends InputError {
  constructor(file: string, what: string) {
    super(`${file}: ${what}`);
  }
}

function view(dtype: DType, bytes: Uint8Array, n: number): HostData {
  // Copy into an aligned buffer: offsets in the file need not be aligned.
  // (new Uint8Array copies; Node's Buffer.slice() would return a view.)
  const buf = new Uint8Array(bytes).buffer;
  switch (dtype) {
    case 'F64':
      return new Float64Array(buf, 0, n);
    case 'F32':
      return new Float32Array(buf, 0, n);
    case 'F16':
    case 'BF16':
      return new Uint16Array(buf, 0, n);
    case 'I64':
      return new BigInt64Array(buf, 0, n);
    case 'I32':
      return new Int32Array(buf, 0, n);
    case 'I16':
      return new Int16Array(buf, 0, n);
    case 'I8':
      return new Int8Array(buf, 0, n);
    case 'U8':
    case 'BOOL':
      return new Uint8Array(buf, 0, n);
  }
}

/** Parse safetensors bytes. `name` is used in error messages. */
export function parseSafetensors(bytes: Uint8Array, name = 'safetensors'): SafetensorsFile {
  if (bytes.length < 8) throw new SafetensorsError(name, `truncated: ${bytes.length} bytes, no header length; the file is not safetensors or was cut short, download it again`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = dv.getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES) && headerLen <= BigInt(bytes.length - 8))
    throw new SafetensorsError(name, `header of ${headerLen} bytes is over the ${MAX_HEADER_BYTES}-byte cap; not a safetensors file this library reads`);
  if (headerLen > BigInt(bytes.length - 8))
    throw new SafetensorsError(name, `truncated: header says ${headerLen} bytes but the file has ${bytes.length - 8} after the length; download or convert it again`);
  const n = Number(headerLen);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new SafetensorsError(name, `malformed header (not JSON: ${(e as Error).message}); the file is not safetensors`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    throw new SafetensorsError(name, 'malformed header: not a JSON object');
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const tensors = new Map<string, HostTensor>();
  let metadata: Record<string, string> = {};
  for (const [key, entry] of Object.entries(header)) {
    if (key === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry) || !Object.values(entry).every((v) => typeof v === 'string'))
        throw new SafetensorsError(name, 'malformed header: __metadata__ is not a map of strings');
      metadata = { ...(entry as Record<string, string>) };
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null || typeof e.dtype !== 'string' || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets) || e.data_offsets.length !== 2)
      throw new SafetensorsError(name, `malformed header entry for '${key}': needs dtype, shape and data_offsets`);
    const dtype = e.dtype as DType;
    if (!(dtype in DTYPE_BYTES)) throw new SafetensorsError(name, `tensor '${key}' has unknown dtype '${e.dtype}'; supported: ${Object.keys(DTYPE_BYTES).join(', ')}`);
    const shape = e.shape as number[];
    if (shape.length > 64 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new SafetensorsError(name, `tensor '${key}' has a bad shape ${JSON.stringify(shape)}`);
    const [begin, end] = e.data_offsets as number[];
    if (!Number.isInteger(begin) || !Number.isInteger(end) || begin < 0 || end < begin || end > dataLen)
      throw new SafetensorsError(name, `tensor '${key}' has offsets [${begin}, ${end}] outside the data (${dataLen} bytes); the file is truncated or corrupt`);
    const count = numel(shape);
    if (!Number.isSafeInteger(count * DTYPE_BYTES[dtype]))
      throw new SafetensorsError(name, `tensor '${key}' has shape ${JSON.stringify(shape)}, whose element count overflows; the file is corrupt`);
    if (end - begin !== count * DTYPE_BYTES[dtype])
      throw new SafetensorsError(name, `tensor '${key}' has ${end - begin} bytes for shape ${JSON.stringify(shape)} of ${dtype} (${count * DTYPE_BYTES[dtype]} expected)`);
    tensors.set(key, { dtype, shape, data: view(dtype, bytes.subarray(dataStart + begin, dataStart + end), count) });
  }
  return { tensors, metadata };
}

/** Serialise tensors (in insertion order) to safetensors bytes. */
export function serializeSafetensors(tensors: Map<string, HostTensor> | Record<string, HostTensor>, metadata?: Record<string, string>): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [key, t] of entries) {
    if (!(t.dtype in DTYPE_BYTES)) throw new Error(`cannot write tensor '${key}': unknown dtype '${t.dtype}'`);
    const nbytes = numel(t.shape) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== nbytes) throw new Error(`cannot write tensor '${key}': ${t.data.byteLength} bytes of data for shape ${JSON.stringify(t.shape)} of ${t.dtype}`);
    header[key] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + nbytes] };
    offset += nbytes;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned.
  json += ' '.repeat((8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8);
  const hbytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hbytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(hbytes.length), true);
  out.set(hbytes, 8);
  let pos = 8 + hbytes.length;
  for (const [, t] of entries) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}
