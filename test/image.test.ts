import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { centerSquareCrop, createImage, cropRect, floatToImage, imageToTensor, imagesToTensor, isImagePath, resizeFloat, resizeImage, resizeSquare, resizeToLimit, tensorToImage, type RgbImage } from '../src/image/image.js';
import { runFfmpeg } from '../src/node/ffmpeg.js';
import { withAtomicOutput, writeFileAtomic } from '../src/node/output.js';
import { concatFrame, concatFrames, hstackImages } from '../src/image/concat.js';
import { MEDIA_DIR } from './helpers/paths.js';
import { pattern } from './helpers/images.js';
import { meanAbsDiff } from './helpers/tensors.js';
import { readImage, writeImage } from '../src/node/image_files.js';

const HAVE_MEDIA = existsSync(join(MEDIA_DIR, 's0.jpg'));


let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lp-image-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!HAVE_MEDIA)('readImage on the shared media', () => {
  it('reads jpgs as RGB with their sizes', async () => {
    const sizes: Record<string, [number, number]> = { 's0.jpg': [600, 704], 'd12.jpg': [720, 720], 's9.jpg': [720, 1280] };
    for (const [name, [w, h]] of Object.entries(sizes)) {
      const img = await readImage(join(MEDIA_DIR, name));
      expect([img.width, img.height]).toEqual([w, h]);
      expect(img.data).toBeInstanceOf(Uint8Array);
      expect(img.data.length).toBe(w * h * 3);
    }
  });
});

describe('image files', () => {
  it('png round trip is exact, jpg close, bmp exact', async () => {
    const img = pattern(37, 23);
    for (const ext of ['png', 'bmp']) {
      const p = join(dir, `rt.${ext}`);
      await writeImage(p, img);
      const back = await readImage(p);
      expect([back.width, back.height]).toEqual([37, 23]);
      expect(Buffer.from(back.data).equals(Buffer.from(img.data))).toBe(true);
    }
    const smooth = resizeImage(pattern(8, 8), 64, 48, 'linear');
    const pj = join(dir, 'rt.jpg');
    await writeImage(pj, smooth);
    const back = await readImage(pj);
    expect([back.width, back.height]).toEqual([64, 48]);
    expect(meanAbsDiff(back.data, smooth.data)).toBeLessThan(4);
  });

  it('reads webp through ffmpeg', async () => {
    const img = pattern(20, 10);
    const png = join(dir, 'w.png');
    const webp = join(dir, 'w.webp');
    await writeImage(png, img);
    const r = await runFfmpeg(['-v', 'error', '-i', png, '-lossless', '1', '-y', webp]);
    expect(r.code).toBe(0);
    const back = await readImage(webp);
    expect([back.width, back.height]).toEqual([20, 10]);
    // Lossless webp still goes through ffmpeg's yuv/rgb conversions: allow small error.
    expect(meanAbsDiff(back.data, img.data)).toBeLessThan(3);
  });

  it('one-line errors naming the file', async () => {
    const missing = join(dir, 'nope.jpg');
    await expect(readImage(missing)).rejects.toThrow(`Cannot read image "${missing}": file not found`);
    const text = join(dir, 'text.jpg');
    writeFileSync(text, 'hello, not an image');
    await expect(readImage(text)).rejects.toThrow(/not an image or unsupported format \(supported: jpg, .*png.*webp/);
    await expect(readImage(dir)).rejects.toThrow(/not a file/);
    await expect(writeImage(join(dir, 'x.tiff'), pattern(2, 2))).rejects.toThrow(/unsupported extension \(supported: jpg/);
    expect(existsSync(join(dir, 'x.tiff'))).toBe(false);
  });

  it('isImagePath by extension', () => {
    expect(isImagePath('a/b.JPG')).toBe(true);
    expect(isImagePath('b.webp')).toBe(true);
    expect(isImagePath('b.mp4')).toBe(false);
    expect(isImagePath('b.pkl')).toBe(false);
  });
});

describe('atomic output', () => {
  it('leaves nothing on failure and keeps an existing file', async () => {
    const sub = mkdtempSync(join(dir, 'atomic-'));
    const p = join(sub, 'out.bin');
    await expect(
      withAtomicOutput(p, (tmp) => {
        writeFileSync(tmp, 'partial');
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(readdirSync(sub)).toEqual([]);
    await writeFileAtomic(p, 'good');
    await expect(withAtomicOutput(p, (tmp) => (writeFileSync(tmp, 'bad'), Promise.reject(new Error('late'))))).rejects.toThrow(
      'late',
    );
    expect(readdirSync(sub)).toEqual(['out.bin']);
  });
});

describe('resize (OpenCV semantics)', () => {
  const row = (vals: number[]) => Float32Array.from(vals);

  it('INTER_AREA: integer factor is a box average', () => {
    // 4x2, 1 channel → 2x1.
    const src = row([0, 2, 4, 6, 10, 12, 14, 16]);
    expect(Array.from(resizeFloat(src, 4, 2, 1, 2, 1, 'area'))).toEqual([6, 10]);
  });

  it('INTER_AREA: non-integer factor weighs partial cells', () => {
    // 3 → 2: [s0 + s1/2, s1/2 + s2] / 1.5
    const out = resizeFloat(row([3, 6, 9]), 3, 1, 1, 2, 1, 'area');
    expect(out[0]).toBeCloseTo((3 + 3) / 1.5, 5);
    expect(out[1]).toBeCloseTo((3 + 9) / 1.5, 5);
    // 5 → 2 (scale 2.5): [s0 + s1 + s2/2, s2/2 + s3 + s4] / 2.5
    const o2 = resizeFloat(row([1, 2, 3, 4, 5]), 5, 1, 1, 2, 1, 'area');
    expect(o2[0]).toBeCloseTo((1 + 2 + 1.5) / 2.5, 5);
    expect(o2[1]).toBeCloseTo((1.5 + 4 + 5) / 2.5, 5);
  });

  it('INTER_AREA upscale by 2 duplicates pixels; INTER_LINEAR uses half-pixel centres', () => {
    expect(Array.from(resizeFloat(row([10, 20]), 2, 1, 1, 4, 1, 'area'))).toEqual([10, 10, 20, 20]);
    expect(Array.from(resizeFloat(row([10, 20]), 2, 1, 1, 4, 1, 'linear'))).toEqual([10, 12.5, 17.5, 20]);
  });

  it('keeps constants, means and channels; sizes as asked', () => {
    const img = createImage(720, 540);
    for (let i = 0; i < img.data.length; i += 3) (img.data[i] = 200), (img.data[i + 1] = 10), (img.data[i + 2] = 77);
    for (const mode of ['area', 'linear'] as const) {
      const r = resizeSquare(img, 256, mode);
      expect([r.width, r.height]).toEqual([256, 256]);
      expect(r.data.every((v, i) => v === [200, 10, 77][i % 3])).toBe(true);
    }
    const p = pattern(512, 512);
    const a = resizeImage(p, 256, 256, 'area');
    // 2x area = mean of 2x2 blocks (rounded).
    const i = (10 * 256 + 20) * 3;
    const blk = [0, 1, 512, 513].map((o) => p.data[(20 * 512 + 40 + o) * 3]);
    expect(a.data[i]).toBe(Math.round(blk.reduce((s, v) => s + v, 0) / 4));
  });

  it('resizeToLimit crops to even sizes and shrinks the long side', () => {
    const r = resizeToLimit(pattern(101, 51));
    expect([r.width, r.height]).toEqual([100, 50]);
    const big = resizeToLimit(pattern(300, 150), 200, 2);
    expect([big.width, big.height]).toEqual([200, 100]);
  });

  it('crops', () => {
    const p = pattern(600, 704);
    const c = centerSquareCrop(p);
    expect([c.width, c.height]).toEqual([600, 600]);
    expect(c.data.subarray(0, 3)).toEqual(p.data.subarray(52 * 600 * 3, 52 * 600 * 3 + 3));
    expect(() => cropRect(p, 500, 0, 200, 10)).toThrow(/outside image/);
  });
});

describe('tensors', () => {
  it('u8 → [1,H,W,3] float32 /255 and back (clip, truncate), no leaks', () => {
    const before = tf.memory().numTensors;
    const img = pattern(5, 4);
    const t = imageToTensor(img);
    expect(t.shape).toEqual([1, 4, 5, 3]);
    expect(t.dtype).toBe('float32');
    const d = t.dataSync();
    expect(d[7]).toBeCloseTo(img.data[7] / 255, 7);
    expect(Buffer.from(tensorToImage(t).data).equals(Buffer.from(img.data))).toBe(true);
    const b = imagesToTensor([img, img]);
    expect(b.shape).toEqual([2, 4, 5, 3]);
    tf.dispose([t, b]);
    expect(tf.memory().numTensors).toBe(before);
    expect(Array.from(floatToImage([-0.5, 0.5, 1.5], 1, 1).data)).toEqual([0, 127, 255]);
  });
});

describe('concat (driving | source | result)', () => {
  it('lays out panels at the result size', () => {
    const result = pattern(8, 6, 1);
    const source = pattern(16, 12, 2);
    const driving = pattern(8, 6, 3);
    const f = concatFrame(driving, source, result);
    expect([f.width, f.height]).toEqual([24, 6]);
    const px = (img: RgbImage, x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));
    expect(px(f, 2, 3)).toEqual(px(driving, 2, 3));
    expect(px(f, 16 + 5, 4)).toEqual(px(result, 5, 4));
    expect(px(f, 8 + 1, 1)).toEqual(px(resizeImage(source, 8, 6, 'linear'), 1, 1));
    const two = concatFrame(undefined, source, result);
    expect([two.width, two.height]).toEqual([16, 6]);
    const all = [...concatFrames([driving, driving], [source], [result, result])];
    expect(all.length).toBe(2);
    expect(() => hstackImages([pattern(2, 2), pattern(2, 3)])).toThrow(/height/);
  });
});
