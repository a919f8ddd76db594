import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsError, parseSafetensors, serializeSafetensors } from '../src/formats/safetensors.js';
import { type HostTensor, bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, toFloat32 } from '../src/formats/host_tensor.js';
import { readSafetensors, writeSafetensors } from '../src/node/files.js';
import { sameBits } from './helpers/tensors.js';
import { errorOf } from './helpers/errors.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lp-st-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));


/** A hand-built file: header JSON (unpadded) + data. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), headerLen?: number): Uint8Array {
  const h = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen ?? h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

describe('safetensors round trip', () => {
  const tensors = new Map<string, HostTensor>([
    ['f32', { dtype: 'F32', shape: [2, 3], data: Float32Array.from([0, -1.5, 3.25, 1e-30, -0, 65504.5]) }],
    ['f16', { dtype: 'F16', shape: [3], data: Uint16Array.from([0x3c00, 0xc100, 0x7bff]) }],
    ['bf16', { dtype: 'BF16', shape: [1, 2], data: Uint16Array.from([0x3f80, 0xc020]) }],
    ['u8', { dtype: 'U8', shape: [5], data: Uint8Array.from([0, 1, 127, 128, 255]) }], // odd size: later offsets unaligned
    ['i64', { dtype: 'I64', shape: [3], data: BigInt64Array.from([-1n, 2n ** 53n + 1n, -(2n ** 63n)]) }],
    ['i32', { dtype: 'I32', shape: [2], data: Int32Array.from([-2147483648, 2147483647]) }],
    ['scalar', { dtype: 'F32', shape: [], data: Float32Array.from([7]) }],
    ['empty', { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) }],
  ]);
  const metadata = { format: 'pt', note: 'ünïcode ✓' };

  it('writes and reads back every dtype bit for bit, with metadata', () => {
    const file = join(dir, 'all.safetensors');
    writeSafetensors(file, tensors, metadata);
    const back = readSafetensors(file);
    expect(back.metadata).toEqual(metadata);
    expect([...back.tensors.keys()]).toEqual([...tensors.keys()]);
    for (const [k, t] of tensors) {
      const g = back.tensors.get(k)!;
      expect({ dtype: g.dtype, shape: g.shape }, k).toEqual({ dtype: t.dtype, shape: t.shape });
      expect(sameBits(g, t), k).toBe(true);
    }
    // Typed views usable despite unaligned offsets in the file.
    expect(Array.from(back.tensors.get('i64')!.data as BigInt64Array)).toEqual([-1n, 2n ** 53n + 1n, -(2n ** 63n)]);
    expect(toFloat32(back.tensors.get('bf16')!)).toEqual(Float32Array.from([1, -2.5]));
    // Atomic write leaves no temporary file behind.
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('pads the header so the data starts 8-byte aligned', () => {
    for (const n of [0, 1, 2, 3, 5, 7, 13]) {
      const b = serializeSafetensors({ ['k'.repeat(n + 1)]: tensors.get('u8')! });
      const len = Number(new DataView(b.buffer).getBigUint64(0, true));
      expect((8 + len) % 8).toBe(0);
      expect(parseSafetensors(b).tensors.size).toBe(1);
    }
  });

  it('writes a valid file for an empty set of tensors', () => {
    const b = serializeSafetensors(new Map());
    expect(parseSafetensors(b).tensors.size).toBe(0);
  });
});

describe('safetensors errors name the file and the problem', () => {
  const good = serializeSafetensors({ a: { dtype: 'F32', shape: [4], data: new Float32Array(4) } });
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['tiny', () => Uint8Array.from([1, 2, 3]), /truncated: 3 bytes, no header length/],
    ['cut-header', () => good.subarray(0, 20), /truncated: header says \d+ bytes but the file has 12/],
    ['cut-data', () => good.subarray(0, good.length - 4), /tensor 'a' has offsets \[0, 16\] outside the data \(12 bytes\)/],
    ['not-json', () => rawFile('{"a": [1, 2'), /malformed header \(not JSON/],
    ['not-object', () => rawFile([1, 2]), /malformed header: not a JSON object/],
    ['bad-entry', () => rawFile({ a: { dtype: 'F32', shape: [1] } }), /malformed header entry for 'a'/],
    ['offsets', () => rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(4)), /offsets \[0, 8\] outside the data \(4 bytes\)/],
    ['neg-offsets', () => rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [-4, 0] } }, new Uint8Array(4)), /offsets \[-4, 0\] outside/],
    ['size', () => rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4)), /has 4 bytes for shape \[2\] of F32 \(8 expected\)/],
    ['dtype', () => rawFile({ a: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)), /tensor 'a' has unknown dtype 'C64'/],
    ['shape', () => rawFile({ a: { dtype: 'U8', shape: [-1], data_offsets: [0, 0] } }), /tensor 'a' has a bad shape \[-1\]/],
  ];
  for (const [name, make, re] of cases)
    it(name, () => {
      const file = join(dir, `${name}.safetensors`);
      writeFileSync(file, make());
      const err = errorOf(() => readSafetensors(file));
      expect(err).toBeInstanceOf(SafetensorsError);
      expect(err.message.startsWith(`${file}: `)).toBe(true);
      expect(err.message).toMatch(re);
    });

  it('missing file', () => {
    const file = join(dir, 'absent.safetensors');
    expect(existsSync(file)).toBe(false);
    expect(() => readSafetensors(file)).toThrow(/absent\.safetensors: cannot read \(ENOENT\)/);
  });

  it('refuses to write inconsistent tensors', () => {
    expect(() => serializeSafetensors({ a: { dtype: 'F32', shape: [3], data: new Float32Array(2) } })).toThrow(/cannot write tensor 'a': 8 bytes of data for shape \[3\]/);
  });
});

describe('float16 / bfloat16 conversions', () => {
  it('float16 known values', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2.5, 0xc100],
      [65504, 0x7bff], // largest finite
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -14, 0x0400], // smallest normal
      [0, 0x0000],
      [-0, 0x8000],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [0.333251953125, 0x3555],
    ];
    for (const [x, h] of cases) {
      expect(f32ToF16(x), `f32ToF16(${x})`).toBe(h);
      expect(Object.is(f16ToF32(h), x), `f16ToF32(0x${h.toString(16)})`).toBe(true);
    }
    expect(Number.isNaN(f16ToF32(f32ToF16(NaN)))).toBe(true);
  });

  it('float16 rounding: nearest, ties to even, overflow, underflow', () => {
    expect(f32ToF16(65520)).toBe(0x7c00); // halfway to 2^16 → rounds up to inf
    expect(f32ToF16(65519)).toBe(0x7bff);
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie → even (down)
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(f32ToF16(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // above the tie
    expect(f32ToF16(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal → 0
    expect(f32ToF16(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 subnormal units → 2
    expect(f32ToF16(2 ** -26)).toBe(0x0000);
    expect(f32ToF16(-(2 ** -24))).toBe(0x8001);
    expect(f32ToF16(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the normals
  });

  it('bfloat16 known values and ties to even', () => {
    const cases: [number, number][] = [
      [1, 0x3f80],
      [-2.5, 0xc020],
      [0, 0x0000],
      [-0, 0x8000],
      [Infinity, 0x7f80],
      [2 ** -133, 0x0001], // smallest subnormal
      [3.3895313892515355e38, 0x7f7f], // largest finite
    ];
    for (const [x, h] of cases) {
      expect(f32ToBf16(x), `f32ToBf16(${x})`).toBe(h);
      expect(Object.is(bf16ToF32(h), x), `bf16ToF32(0x${h.toString(16)})`).toBe(true);
    }
    expect(f32ToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie → even (down)
    expect(f32ToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie → even (up)
    expect(f32ToBf16(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(f32ToBf16(65504)).toBe(0x4780); // 65504 → 65536
    expect(f32ToBf16(3.4e38)).toBe(0x7f80); // rounds past the largest finite → inf
    expect(Number.isNaN(bf16ToF32(f32ToBf16(NaN)))).toBe(true);
  });
});
