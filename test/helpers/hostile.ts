/**
 * Helpers for the hostile-input tests: a pickle writer (crafted pickles are
 * built here, byte by byte), a torch.save-style zip writer, mutations of
 * valid files for fast-check, and the check every fuzz case makes.
 */
import { zipSync } from 'fflate';
import fc from 'fast-check';
import { expect } from 'vitest';
import { LivePortraitError } from '../../src/errors.js';

const enc = new TextEncoder();

/** Pickle opcodes, written in order (protocol 2 header unless told). */
export class PickleWriter {
  parts: number[];
  constructor(protocol = 2) {
    this.parts = [0x80, protocol];
  }
  op(...b: number[]): this {
    for (const x of b) this.parts.push(x);
    return this;
  }
  str(s: string): this {
    const u = enc.encode(s);
    return this.op(0x58, u.length & 0xff, (u.length >> 8) & 0xff, (u.length >> 16) & 0xff, 0, ...u);
  }
  int(n: number): this {
    return this.op(0x4a, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff);
  }
  /** GLOBAL (protocol 0-2 form). */
  global(mod: string, name: string): this {
    return this.op(0x63, ...enc.encode(`${mod}\n${name}\n`));
  }
  /** STACK_GLOBAL (protocol 4 form). */
  stackGlobal(mod: string, name: string): this {
    return this.str(mod).str(name).op(0x93);
  }
  mark(): this {
    return this.op(0x28);
  }
  tuple(xs: number[]): this {
    this.mark();
    xs.forEach((x) => this.int(x));
    return this.op(0x74);
  }
  bytes(): Uint8Array {
    return Uint8Array.from([...this.parts, 0x2e]);
  }
}

/**
 * What `pickle.dumps` writes for an object whose __reduce__ is
 * (module.name, (arg,)): unpickling it with Python calls module.name(arg).
 * With `os.system` and `touch FILE`, torch.load / pickle.load create FILE.
 */
export function reducePickle(mod: string, name: string, arg: string, form: 'global' | 'stack' = 'global', protocol = 2): Uint8Array {
  const p = new PickleWriter(protocol);
  if (form === 'global') p.global(mod, name);
  else p.stackGlobal(mod, name);
  return p.str(arg).op(0x85, 0x52).bytes(); // TUPLE1, REDUCE
}

/** A torch.save-style zip: archive/data.pkl, archive/byteorder, archive/data/<key> (stored, as torch writes them). */
export function zipPth(pkl: Uint8Array, storages: Record<string, Uint8Array> = {}, level: 0 | 9 = 0): Uint8Array {
  const files: Record<string, [Uint8Array, { level: 0 | 9 }]> = {};
  files['archive/data.pkl'] = [pkl, { level: 0 }];
  files['archive/byteorder'] = [enc.encode('little'), { level: 0 }];
  for (const [k, v] of Object.entries(storages)) files[`archive/data/${k}`] = [v, { level }];
  files['archive/version'] = [enc.encode('3\n'), { level: 0 }];
  return zipSync(files);
}

/** A state-dict pickle {name: tensor of `numel` float32 in storage key, shape [numel]}. */
export function stateDictPickle(tensors: { name: string; key: string; numel: number; size?: number[]; stride?: number[] }[]): Uint8Array {
  const p = new PickleWriter();
  p.global('collections', 'OrderedDict').op(0x29, 0x52).mark();
  for (const t of tensors) {
    p.str(t.name);
    p.global('torch._utils', '_rebuild_tensor_v2').mark();
    p.mark().str('storage').global('torch', 'FloatStorage').str(t.key).str('cpu').int(t.numel).op(0x74, 0x51);
    p.int(0).tuple(t.size ?? [t.numel]).tuple(t.stride ?? [1]).op(0x89);
    p.global('collections', 'OrderedDict').op(0x29, 0x52);
    p.op(0x74, 0x52);
  }
  return p.op(0x75).bytes();
}

/** Little-endian bytes of a value of `width` bytes (up to 8). */
function le(v: bigint, width: number): number[] {
  return Array.from({ length: width }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));
}

const BIG_VALUES = [0xffffffffn, 0x7fffffffn, 0x80000000n, 2n ** 60n, 2n ** 64n - 1n, 0n, 1n, 0xffffn, 2n ** 53n + 1n, 30000n];

/**
 * Mutations of a valid file: bit flips, truncation, splices (insert random
 * bytes, delete a range, duplicate a range elsewhere) and inflated length
 * fields (2/4/8-byte values written anywhere).
 */
export function mutated(base: Uint8Array): fc.Arbitrary<Uint8Array> {
  const n = base.length;
  const idx = fc.nat({ max: Math.max(0, n - 1) });
  const flips = fc.array(fc.tuple(idx, fc.nat({ max: 7 })), { minLength: 1, maxLength: 8 }).map((fl) => {
    const b = base.slice();
    for (const [i, bit] of fl) b[i] ^= 1 << bit;
    return b;
  });
  const truncate = fc.nat({ max: n }).map((k) => base.slice(0, k));
  const insert = fc.tuple(idx, fc.uint8Array({ minLength: 1, maxLength: 64 })).map(([i, ins]) => concat(base.subarray(0, i), ins, base.subarray(i)));
  const remove = fc.tuple(idx, fc.nat({ max: 256 })).map(([i, k]) => concat(base.subarray(0, i), base.subarray(Math.min(n, i + 1 + k))));
  const duplicate = fc.tuple(idx, idx, fc.nat({ max: 512 })).map(([from, to, k]) => concat(base.subarray(0, to), base.subarray(from, Math.min(n, from + 1 + k)), base.subarray(to)));
  const inflate = fc
    .array(fc.tuple(idx, fc.constantFrom(2, 4, 8), fc.constantFrom(...BIG_VALUES)), { minLength: 1, maxLength: 3 })
    .map((ws) => {
      const b = base.slice();
      for (const [i, w, v] of ws) b.set(le(v, w).slice(0, Math.max(0, n - i)), i);
      return b;
    });
  return fc.oneof(flips, truncate, insert, remove, duplicate, inflate);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Random bytes, and random bytes behind a valid magic number (so they get past the first check). */
export function randomBytes(magics: number[][]): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.uint8Array({ maxLength: 512 }),
    fc.tuple(fc.constantFrom(...magics), fc.uint8Array({ maxLength: 512 })).map(([m, r]) => concat(Uint8Array.from(m), r)),
  );
}

/** Runs per fuzzed parser: 10,000 in CI (fixed seed), more with LP_FUZZ_RUNS. */
export const FUZZ_RUNS = Number(process.env.LP_FUZZ_RUNS ?? 10_000);
export const FUZZ_SEED = Number(process.env.LP_FUZZ_SEED ?? 22);
export const fuzzParams = (runs = FUZZ_RUNS) => ({ numRuns: runs, seed: FUZZ_SEED, endOnFailure: true });

/** The slowest case seen per parser (a hang shows as a slow case, or a test timeout). */
export const slowest = new Map<string, number>();

/**
 * Run `parse` on hostile bytes: it may return, or throw one of the library's
 * errors (InputError, WeightsError and their subclasses) with a one-line
 * message naming `file`; never a TypeError, RangeError or other crash, and
 * never one wrapped as a cause.
 */
export function expectResultOrLibraryError(label: string, file: string, parse: () => unknown): void {
  const t0 = performance.now();
  try {
    parse();
  } catch (e) {
    if (!(e instanceof LivePortraitError)) throw new Error(`${label}: ${(e as Error)?.constructor?.name} escaped: ${(e as Error)?.stack ?? e}`);
    const cause = (e as { cause?: unknown }).cause;
    if (cause !== undefined && !(cause instanceof LivePortraitError))
      throw new Error(`${label}: a ${(cause as Error)?.constructor?.name} was wrapped: ${(cause as Error)?.stack ?? cause}`);
    expect(e.message, label).not.toMatch(/\n/);
    expect(e.message, label).toContain(file);
    expect(e.message.length, label).toBeLessThan(600);
  }
  const dt = performance.now() - t0;
  slowest.set(label, Math.max(slowest.get(label) ?? 0, dt));
}
