import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PthError, flattenStateDict, isHostTensor, parsePth } from '../src/formats/pth.js';
import { type HostTensor, f32ToBf16, f32ToF16 } from '../src/formats/host_tensor.js';
import { describeParity, fixtureStateDict } from './helpers/parity.js';
import { PARITY_DIR } from './helpers/paths.js';
import { sameBits } from './helpers/tensors.js';
import { errorOf } from './helpers/errors.js';
import { readPth, readPthStateDict } from '../src/node/files.js';
import { PickleWriter } from './helpers/pickle_writer.js';

/** Bitwise equality of two host tensors (dtype, shape, bytes). */
function expectSameBits(got: HostTensor | undefined, want: HostTensor, key: string): void {
  expect(got, key).toBeDefined();
  expect({ dtype: got!.dtype, shape: got!.shape }, key).toEqual({ dtype: want.dtype, shape: want.shape });
  expect(sameBits(got, want), key).toBe(true);
}

// ---- A minimal writer of torch.save's zip format, to test what the fixtures lack.

const enc = new TextEncoder();

interface FakeTensor {
  storage: string;
  type: string; // e.g. FloatStorage
  numel: number;
  offset: number;
  size: number[];
  stride: number[];
  parameter?: boolean;
}
type Tree = FakeTensor | Map<string, Tree>;

function emit(p: PickleWriter, t: Tree): void {
  if (t instanceof Map) {
    p.global('collections', 'OrderedDict').op(0x29, 0x52).mark();
    for (const [k, v] of t) {
      p.str(k);
      emit(p, v);
    }
    p.op(0x75); // SETITEMS
    return;
  }
  if (t.parameter) p.global('torch._utils', '_rebuild_parameter').mark();
  p.global('torch._utils', '_rebuild_tensor_v2').mark();
  p.mark().str('storage').global('torch', t.type).str(t.storage).str('cpu').int(t.numel).op(0x74, 0x51); // TUPLE, BINPERSID
  p.int(t.offset).tuple(t.size).tuple(t.stride).op(0x89); // requires_grad False
  p.global('collections', 'OrderedDict').op(0x29, 0x52); // backward hooks
  p.op(0x74, 0x52); // TUPLE, REDUCE
  if (t.parameter) p.op(0x89).global('collections', 'OrderedDict').op(0x29, 0x52).op(0x74, 0x52);
}

function makePth(tree: Tree, storages: Record<string, Uint8Array>, opts: { dropPkl?: boolean; archive?: string } = {}): Uint8Array {
  const a = opts.archive ?? 'archive';
  const files: Record<string, [Uint8Array, { level: 0 }]> = {};
  const p = new PickleWriter();
  emit(p, tree);
  if (!opts.dropPkl) files[`${a}/data.pkl`] = [p.bytes(), { level: 0 }];
  files[`${a}/byteorder`] = [enc.encode('little'), { level: 0 }];
  for (const [k, v] of Object.entries(storages)) if (v) files[`${a}/data/${k}`] = [v, { level: 0 }];
  files[`${a}/version`] = [enc.encode('3\n'), { level: 0 }];
  return zipSync(files);
}

const u8 = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('pth reader on hand-made checkpoints', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'lp-pth-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // A 3×4 float32 storage 0..11 shared by a contiguous tensor, a transpose and an offset slice.
  const base = Float32Array.from({ length: 12 }, (_, i) => i);
  const halfVals = [1, -2.5, 65504, 2 ** -24, 0.1];
  const f16 = Uint16Array.from(halfVals.map(f32ToF16));
  const bf16 = Uint16Array.from(halfVals.map(f32ToBf16));
  const i64 = BigInt64Array.from([0n, -1n, 2n ** 40n, -(2n ** 62n)]);
  const bytes = Uint8Array.from([0, 1, 200, 255]);

  const tree: Tree = new Map<string, Tree>([
    [
      'module.net',
      new Map<string, Tree>([
        ['module.w', { storage: '0', type: 'FloatStorage', numel: 12, offset: 0, size: [3, 4], stride: [4, 1] }],
        ['wT', { storage: '0', type: 'FloatStorage', numel: 12, offset: 0, size: [4, 3], stride: [1, 4] }],
        ['row1', { storage: '0', type: 'FloatStorage', numel: 12, offset: 4, size: [4], stride: [1] }],
        ['col2', { storage: '0', type: 'FloatStorage', numel: 12, offset: 2, size: [3, 1], stride: [4, 1] }],
        ['p', { storage: '0', type: 'FloatStorage', numel: 12, offset: 0, size: [2, 2], stride: [4, 1], parameter: true }],
      ]),
    ],
    ['half', { storage: '1', type: 'HalfStorage', numel: 5, offset: 0, size: [5], stride: [1] }],
    ['bf', { storage: '2', type: 'BFloat16Storage', numel: 5, offset: 0, size: [5], stride: [1] }],
    ['long', { storage: '3', type: 'LongStorage', numel: 4, offset: 0, size: [2, 2], stride: [1, 2] }],
    ['byte', { storage: '4', type: 'ByteStorage', numel: 4, offset: 0, size: [4], stride: [1] }],
    ['scalar', { storage: '4', type: 'ByteStorage', numel: 4, offset: 2, size: [], stride: [] }],
  ]);
  const storages = { '0': u8(base), '1': u8(f16), '2': u8(bf16), '3': u8(i64), '4': bytes };

  it('reads nested dicts, dtypes, strides, offsets and parameters', () => {
    const obj = parsePth(makePth(tree, storages), 'x.pth') as Map<string, unknown>;
    expect(obj).toBeInstanceOf(Map);
    expect([...obj.keys()]).toEqual(['module.net', 'half', 'bf', 'long', 'byte', 'scalar']);
    const sd = flattenStateDict(obj, 'x.pth');
    expect([...sd.keys()]).toEqual(['net.w', 'net.wT', 'net.row1', 'net.col2', 'net.p', 'half', 'bf', 'long', 'byte', 'scalar']);
    expect(Array.from(sd.get('net.w')!.data as Float32Array)).toEqual(Array.from(base));
    // Transposed view, materialised row-major.
    expect(sd.get('net.wT')!.shape).toEqual([4, 3]);
    expect(Array.from(sd.get('net.wT')!.data as Float32Array)).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    expect(Array.from(sd.get('net.row1')!.data as Float32Array)).toEqual([4, 5, 6, 7]);
    expect(Array.from(sd.get('net.col2')!.data as Float32Array)).toEqual([2, 6, 10]);
    expect(Array.from(sd.get('net.p')!.data as Float32Array)).toEqual([0, 1, 4, 5]);
    expectSameBits(sd.get('half'), { dtype: 'F16', shape: [5], data: f16 }, 'half');
    expectSameBits(sd.get('bf'), { dtype: 'BF16', shape: [5], data: bf16 }, 'bf');
    // Column-major 2×2 of int64: [[0, 2^40], [-1, -2^62]].
    expect(sd.get('long')!.dtype).toBe('I64');
    expect(Array.from(sd.get('long')!.data as BigInt64Array)).toEqual([0n, 2n ** 40n, -1n, -(2n ** 62n)]);
    expectSameBits(sd.get('byte'), { dtype: 'U8', shape: [4], data: bytes }, 'byte');
    expect(sd.get('scalar')!.shape).toEqual([]);
    expect(Array.from(sd.get('scalar')!.data as Uint8Array)).toEqual([200]);
    expect(isHostTensor(sd.get('half'))).toBe(true);
  });

  it('accepts any archive folder name', () => {
    const sd = flattenStateDict(parsePth(makePth(tree, storages, { archive: 'my_model' }), 'y.pth'));
    expect(sd.size).toBe(10);
  });

  const cases: [string, () => Uint8Array, RegExp][] = [
    ['not a zip', () => enc.encode('hello world, not a checkpoint'), /not a zip/],
    ['legacy format', () => Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]), /legacy \(non-zip\).*re-save.*convert/],
    ['missing data.pkl', () => makePth(tree, storages, { dropPkl: true }), /without data\.pkl/],
    ['missing storage record', () => makePth(tree, { ...storages, '3': undefined as unknown as Uint8Array }), /missing storage record 'archive\/data\/3'/],
    ['short storage record', () => makePth(tree, { ...storages, '0': u8(base).subarray(0, 20) }), /truncated: storage record 'archive\/data\/0' has 20 bytes, 48 expected/],
    ['cut file', () => makePth(tree, storages).subarray(0, 300), /truncated or corrupt zip/],
  ];
  for (const [name, make, re] of cases)
    it(`fails clearly on ${name}`, () => {
      const file = join(dir, `${name.replace(/ /g, '_')}.pth`);
      writeFileSync(file, make());
      const err = errorOf(() => readPth(file));
      expect(err).toBeInstanceOf(PthError);
      expect(err.message.startsWith(`${file}: `)).toBe(true);
      expect(err.message).toMatch(re);
      expect(err.message).not.toContain('\n');
    });

  it('names a missing file', () => {
    expect(() => readPth(join(dir, 'nope.pth'))).toThrow(/nope\.pth: cannot read \(ENOENT\)/);
  });
});

describeParity('pth reader on the reference checkpoints', () => {
  const ckpt = (name: string): string => join(PARITY_DIR, 'checkpoints', `${name}.pth`);

  it('appearance_feature_extractor.pth equals the weight rule bit for bit', () => {
    const sd = readPthStateDict(ckpt('appearance_feature_extractor'));
    const want = fixtureStateDict('appearance_feature_extractor');
    for (const [key, t] of want) expectSameBits(sd.get(key), t, key);
    // The only extra keys are BatchNorm's step counters (int64 scalars).
    const extra = [...sd.keys()].filter((k) => !want.has(k));
    expect(extra.every((k) => k.endsWith('num_batches_tracked') && sd.get(k)!.dtype === 'I64')).toBe(true);
  });

  it('stitching_retargeting_module.pth: three dicts with module. keys, equal to the rule', () => {
    const raw = readPth(ckpt('stitching_retargeting_module')) as Map<string, Map<string, unknown>>;
    expect([...raw.keys()]).toEqual(['retarget_shoulder', 'retarget_mouth', 'retarget_eye']);
    expect([...raw.get('retarget_shoulder')!.keys()][0]).toBe('module.mlp.0.weight');
    const sd = readPthStateDict(ckpt('stitching_retargeting_module'));
    let n = 0;
    for (const part of ['retarget_shoulder', 'retarget_mouth', 'retarget_eye']) {
      const want = fixtureStateDict(`stitching_retargeting_module/${part}`);
      for (const [key, t] of want) expectSameBits(sd.get(`${part}.${key}`), t, `${part}.${key}`);
      n += want.size;
    }
    expect(sd.size).toBe(n);
  });

  it('reports a truncated real checkpoint', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lp-pth-cut-'));
    try {
      const file = join(dir, 'cut.pth');
      const b = readFileSync(ckpt('stitching_retargeting_module'));
      writeFileSync(file, b.subarray(0, Math.floor(b.length / 2)));
      expect(() => readPth(file)).toThrow(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: truncated`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
