// Property-based fuzzing (fast-check) of every parser of files a user may
// download: .pth (zip + pickle), numpy pickles and the reference's .pkl
// templates, safetensors, our motion templates, image headers and decoding,
// ffmpeg's probe output, and serve's request paths. Random bytes and valid
// files mutated (bit flips, truncation, splices, inflated lengths,
// duplicated keys). Each case may return, or throw one of the library's
// errors in one line naming the file; never a TypeError, RangeError, an
// out-of-memory or a hang. 10,000 cases per parser with a fixed seed;
// LP_FUZZ_RUNS=100000 (and LP_FUZZ_SEED) for a longer run.
import { mkdtempSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import fc from 'fast-check';
import { Jimp } from 'jimp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flattenStateDict, parsePth } from '../src/formats/pth.js';
import { readNumpyPickle } from '../src/formats/numpy_pickle.js';
import { parseSafetensors, serializeSafetensors } from '../src/formats/safetensors.js';
import { parseAnyTemplate, readReferenceTemplate, templateToTensors, type MotionFrame } from '../src/formats/template.js';
import { checkImageSize, gifProblem, readImageHeader } from '../src/image/header.js';
import { readImage } from '../src/node/image_files.js';
import { videoInfoFromProbe } from '../src/node/video.js';
import { ffmpegPath } from '../src/node/ffmpeg.js';
import { resolveRequestPath } from '../src/node/serve.js';
import { MEDIA_DIR, PARITY_DIR } from './helpers/parity.js';
import { FUZZ_RUNS, PickleWriter, concat, expectResultOrLibraryError, fuzzParams, mutated, randomBytes, slowest, stateDictPickle, zipPth } from './helpers/hostile.js';

const u8 = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const enc = new TextEncoder();

/** Mutated valid files and random bytes, in the proportion 4:1. */
function hostile(bases: Uint8Array[], magics: number[][]): fc.Arbitrary<Uint8Array> {
  return fc.oneof({ arbitrary: fc.oneof(...bases.map(mutated)), weight: 4 }, { arbitrary: randomBytes(magics), weight: 1 });
}

function check(label: string, file: string, arb: fc.Arbitrary<Uint8Array>, parse: (b: Uint8Array) => unknown, runs = FUZZ_RUNS): void {
  fc.assert(
    fc.property(arb, (b) => expectResultOrLibraryError(label, file, () => parse(b))),
    fuzzParams(runs),
  );
}

afterAll(() => {
  // One line per parser for the CI log: the slowest case (a hang would show here first).
  for (const [k, v] of slowest) console.log(`fuzz ${k}: slowest case ${v.toFixed(1)} ms`);
});

describe('fuzz: .pth checkpoints (zip + pickle)', () => {
  const w = Float32Array.from({ length: 12 }, (_, i) => i);
  const pkl = stateDictPickle([
    { name: 'module.w', key: '0', numel: 12, size: [3, 4], stride: [4, 1] },
    { name: 'wT', key: '0', numel: 12, size: [4, 3], stride: [1, 4] },
    { name: 'b', key: '1', numel: 3 },
  ]);
  const stored = zipPth(pkl, { '0': u8(w), '1': u8(Float32Array.of(1, 2, 3)) });
  const deflated = zipPth(pkl, { '0': u8(w), '1': u8(Float32Array.of(1, 2, 3)) }, 9);
  const parse = (b: Uint8Array) => flattenStateDict(parsePth(b, 'x.pth'), 'x.pth');

  it('the valid bases parse', () => {
    expect([...parse(stored).keys()]).toEqual(['w', 'wT', 'b']);
    expect([...parse(deflated).keys()]).toEqual(['w', 'wT', 'b']);
  });

  it(`${FUZZ_RUNS} hand-made checkpoints mutated, and random bytes`, () => {
    check('pth', 'x.pth', hostile([stored, deflated, pkl], [[0x50, 0x4b, 0x03, 0x04], [0x80, 0x02]]), parse);
  });

  it('a real checkpoint (the stitching fixture) mutated', () => {
    const real = readFileSync(join(PARITY_DIR, 'checkpoints/stitching_retargeting_module.pth'));
    expect(parse(real).size).toBeGreaterThan(10);
    // Its 90 KB data.pkl is the part worth mutating; whole-file mutations copy 0.9 MB each, so fewer.
    check('pth(real)', 'x.pth', mutated(real), parse, Math.ceil(FUZZ_RUNS / 10));
  });
});

describe('fuzz: numpy pickles and the reference .pkl templates', () => {
  const laugh = readFileSync(join(MEDIA_DIR, 'laugh.pkl'));

  it('the valid base parses', () => {
    expect(readReferenceTemplate(laugh, 'laugh.pkl').frames.length).toBe(54);
  });

  it(`${FUZZ_RUNS} mutated templates and random pickles`, () => {
    check('pkl template', 'laugh.pkl', hostile([laugh], [[0x80, 0x04, 0x95], [0x80, 0x02]]), (b) => parseAnyTemplate(b, 'laugh.pkl'));
  });

  it(`${FUZZ_RUNS} mutated numpy arrays (lip_array.pkl)`, () => {
    // An array pickled on its own, as numpy writes it (protocol 2): _reconstruct, then BUILD with its state.
    const p = new PickleWriter(2);
    p.global('numpy.core.multiarray', '_reconstruct').global('numpy', 'ndarray').int(0).op(0x85).op(0x43, 1, 0x62).op(0x87, 0x52);
    p.mark().int(1).tuple([1, 3]);
    p.global('numpy', 'dtype').str('f4').op(0x89, 0x88, 0x87, 0x52);
    p.mark().int(3).str('<').op(0x4e, 0x4e, 0x4e).int(-1).int(-1).int(0).op(0x74, 0x62);
    p.op(0x89).op(0x43, 12, ...u8(Float32Array.of(0.5, -1, 2))).op(0x74, 0x62);
    const arr = p.bytes();
    expect(Array.from(readNumpyPickle(arr, 'lip_array.pkl').data)).toEqual([0.5, -1, 2]);
    check('numpy pickle', 'lip_array.pkl', hostile([arr], [[0x80, 0x04], [0x80, 0x02]]), (b) => readNumpyPickle(b, 'lip_array.pkl'));
  });
});

/** A safetensors header with hostile entries: duplicated keys, huge or odd shapes, offsets, dtypes. */
function hostileHeader(): fc.Arbitrary<Uint8Array> {
  const num = fc.oneof(fc.integer({ min: -2, max: 64 }), fc.constantFrom(2 ** 31, 2 ** 53, 2 ** 60, 1e300, 0.5, -0));
  const entry = fc.record({
    dtype: fc.oneof(fc.constantFrom('F32', 'F16', 'BF16', 'I64', 'U8', 'BOOL', 'F8', ''), fc.string()),
    shape: fc.oneof(fc.array(num, { maxLength: 5 }), fc.constant('x' as unknown as number[])),
    data_offsets: fc.oneof(fc.tuple(num, num), fc.array(num, { maxLength: 3 })),
  });
  const key = fc.constantFrom('R', 'exp', 't', 'scale', '__proto__', 'constructor', '__metadata__', 'a');
  return fc.tuple(fc.array(fc.tuple(key, fc.oneof(entry, fc.constant(null), fc.dictionary(fc.string(), fc.string()))), { maxLength: 6 }), fc.uint8Array({ maxLength: 128 })).map(([entries, data]) => {
    // Written by hand so keys can repeat (JSON.parse keeps the last).
    const json = `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;
    const h = enc.encode(json);
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(h.length), true);
    return concat(len, h, data);
  });
}

describe('fuzz: safetensors', () => {
  const small = serializeSafetensors(new Map([
    ['a', { dtype: 'F32' as const, shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) }],
    ['b', { dtype: 'F16' as const, shape: [1], data: Uint16Array.of(0x3c00) }],
  ]), { k: 'v' });

  it(`${FUZZ_RUNS} mutated files, hostile headers, random bytes`, () => {
    const camera = readFileSync(join(PARITY_DIR, 'camera.safetensors'));
    expect(parseSafetensors(camera, 'm.safetensors').tensors.size).toBeGreaterThan(0);
    const arb = fc.oneof({ arbitrary: hostile([small, camera], [[8, 0, 0, 0, 0, 0, 0, 0, 0x7b]]), weight: 3 }, { arbitrary: hostileHeader(), weight: 1 });
    check('safetensors', 'm.safetensors', arb, (b) => parseSafetensors(b, 'm.safetensors'));
  });
});

describe('fuzz: motion templates (.lpmotion.safetensors)', () => {
  const frame = (i: number): MotionFrame => ({
    R: Float32Array.from({ length: 9 }, (_, k) => (k % 4 === 0 ? 1 : 0)),
    exp: new Float32Array(63).fill(i / 10),
    t: Float32Array.of(i, 0, 0),
    scale: 1.5,
    kp: new Float32Array(63),
    x_s: new Float32Array(63),
    eyeRatio: Float32Array.of(0.3, 0.3),
    lipRatio: 0.1,
  });
  const { tensors, metadata } = templateToTensors({ fps: 25, frames: [frame(0), frame(1), frame(2)] });
  const tpl = serializeSafetensors(tensors, metadata);

  it(`${FUZZ_RUNS} mutated templates, hostile headers`, () => {
    expect(parseAnyTemplate(tpl, 'm.lpmotion.safetensors').frames.length).toBe(3);
    const arb = fc.oneof({ arbitrary: hostile([tpl], [[8, 0, 0, 0, 0, 0, 0, 0, 0x7b]]), weight: 3 }, { arbitrary: hostileHeader(), weight: 1 });
    check('lpmotion', 'm.lpmotion.safetensors', arb, (b) => parseAnyTemplate(b, 'm.lpmotion.safetensors'));
  });
});

describe('fuzz: images', () => {
  let dir: string;
  const bases: Uint8Array[] = [];
  let gif: Uint8Array;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lp-fuzz-img-'));
    const j = new Jimp({ width: 12, height: 8, color: 0x336699ff });
    for (const mime of ['image/png', 'image/jpeg', 'image/bmp', 'image/gif'] as const) bases.push(new Uint8Array(await j.getBuffer(mime)));
    gif = bases.pop()!;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(`${FUZZ_RUNS} headers (png, jpeg, bmp, gif, webp, tiff) mutated and random: dimensions read or none, never a crash`, () => {
    const s0 = readFileSync(join(MEDIA_DIR, 's0.jpg')).subarray(0, 4096);
    const magics = [[0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52], [0xff, 0xd8], [0x42, 0x4d], [0x47, 0x49, 0x46], [0x49, 0x49, 0x2a, 0], [0x4d, 0x4d, 0, 0x2a], [...enc.encode('RIFF'), 0, 0, 0, 0, ...enc.encode('WEBPVP8X')]];
    check('image header', 'p.png', hostile([...bases, gif, s0], magics), (b) => {
      if (b[0] === 0x47) gifProblem(b);
      const h = readImageHeader(b);
      if (h) {
        expect(Number.isInteger(h.width) && Number.isInteger(h.height)).toBe(true);
        checkImageSize('p.png', h.width, h.height);
      }
    });
  });

  // Whole decodes cost ~3 ms each (a file written, jimp): a quarter of the runs keeps the file under a minute;
  // the header check in front of them has the full 10,000 above. GIFs decode through ffmpeg (jimp's
  // decoder hung on two of these cases), 0.1 s a case: not decoded here.
  const DECODE_RUNS = Math.ceil(FUZZ_RUNS / 4);
  it(`${DECODE_RUNS} mutated png, jpeg and bmp decoded (jimp, header cap first)`, async () => {
    const path = join(dir, 'p.img');
    let decoded = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(...bases.map(mutated)), async (b) => {
        writeFileSync(path, b);
        try {
          const img = await readImage(path);
          expect(img.data.length).toBe(img.width * img.height * 3);
          decoded++;
        } catch (e) {
          expectResultOrLibraryError('image decode', path, () => {
            throw e;
          });
        }
      }),
      fuzzParams(DECODE_RUNS),
    );
    expect(decoded).toBeGreaterThan(0);
  });
});

describe('fuzz: video probe output', () => {
  it(`${FUZZ_RUNS} mutated ffmpeg probe outputs: a probe result within the caps, or one line`, () => {
    const r = spawnSync(ffmpegPath(), ['-hide_banner', '-i', join(MEDIA_DIR, 'd11.mp4'), '-map', '0:v:0', '-c', 'copy', '-f', 'null', '-'], { encoding: 'utf8' });
    const text = r.stderr;
    const info = videoInfoFromProbe('d.mp4', text);
    expect(info.width).toBeGreaterThan(0);
    const lines = text.split('\n');
    const arb = fc.oneof(
      fc.tuple(fc.nat({ max: lines.length - 1 }), fc.string({ maxLength: 80 })).map(([i, s]) => [...lines.slice(0, i), s, ...lines.slice(i + 1)].join('\n')),
      fc.tuple(fc.nat({ max: text.length }), fc.constantFrom('15360x8640', '99999x99999', '0x0', '1000000 fps', '0 fps', 'Duration: 99:59:59.00', 'frame=99999999', 'rotate : 90', ', 1e400 fps')).map(([i, s]) => text.slice(0, i) + s + text.slice(i)),
      fc.string({ maxLength: 300 }),
    );
    fc.assert(
      fc.property(arb, (t) =>
        expectResultOrLibraryError('probe', 'd.mp4', () => {
          const v = videoInfoFromProbe('d.mp4', t);
          expect(v.width * v.height).toBeLessThanOrEqual(100e6);
          expect(v.width * v.height).toBeGreaterThan(0);
        }),
      ),
      fuzzParams(),
    );
  });
});

describe('fuzz: serve request paths', () => {
  let root: string;
  let outside: string;
  beforeAll(() => {
    const base = realpathSync(mkdtempSync(join(tmpdir(), 'lp-fuzz-serve-')));
    root = join(base, 'page');
    outside = join(base, 'secret.txt');
    mkdirSync(join(root, 'assets'), { recursive: true });
    writeFileSync(join(root, 'index.html'), 'page');
    writeFileSync(join(root, 'assets', 'a.js'), 'js');
    writeFileSync(outside, 'secret');
    symlinkSync(outside, join(root, 'leak.txt'));
    symlinkSync(base, join(root, 'up'));
  });

  it(`${FUZZ_RUNS} hostile URLs: a file inside the page or nothing`, () => {
    const piece = fc.constantFrom('..', '.', '%2e%2e', '%2E%2e', '%252e%252e', '%2f', '%5c', '\\', '%00', '\0', 'leak.txt', 'up', 'secret.txt', 'assets', 'a.js', 'index.html', '', '//', 'http:', '%u002e', '..;', '.%2e', '%c0%ae');
    const url = fc.oneof(
      fc.array(fc.oneof(piece, fc.string({ maxLength: 6 })), { maxLength: 8 }).map((ps) => `/${ps.join('/')}`),
      fc.string({ maxLength: 40 }),
      fc.constantFrom('http://evil.example/../secret.txt', '//etc/passwd', '/..%2f..%2fsecret.txt', '/%2e%2e/secret.txt', '/up/secret.txt', '/leak.txt', '/assets/../../secret.txt'),
    );
    fc.assert(
      fc.property(url, (u) => {
        const f = resolveRequestPath(root, u);
        if (f !== undefined) {
          expect(f.startsWith(root + sep), u).toBe(true);
          if (statSync(f).isFile()) expect(readFileSync(f, 'utf8'), u).not.toBe('secret');
        }
      }),
      fuzzParams(),
    );
    expect(resolveRequestPath(root, '/assets/a.js')).toBe(join(root, 'assets', 'a.js'));
    expect(resolveRequestPath(root, '/')).toBe(join(root, 'index.html'));
  });
});
