import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { MEDIA_DIR } from './helpers/paths.js';
import { type Face } from '../src/face/detector.js';
import { loadFaceDetector } from '../src/node/face_models.js';
import { FM_EYE_L, FM_EYE_R, parsePt2 } from '../src/face/crop.js';
import { calcEyeCloseRatio, calcLipCloseRatio } from '../src/face/ratios.js';
import { readImage } from '../src/node/image_files.js';
import { type Point2 } from '../src/image/affine.js';
import { type RgbImage } from '../src/image/image.js';

/** First n frames of a video as RGB, through the bundled ffmpeg binary (frame size given). */
function readFrames(path: string, n: number, width: number, height: number): RgbImage[] {
  const require = createRequire(import.meta.url);
  const ffmpeg = (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
  const r = spawnSync(ffmpeg, ['-v', 'error', '-i', path, '-frames:v', String(n), '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], {
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`ffmpeg failed: ${r.stderr}`);
  const size = width * height * 3;
  expect(r.stdout.length).toBe(n * size);
  return Array.from({ length: n }, (_, i) => ({ width, height, data: new Uint8Array(r.stdout.subarray(i * size, (i + 1) * size)) }));
}

/** Two images side by side on a black canvas (a synthetic group photo). */
function sideBySide(a: RgbImage, b: RgbImage): RgbImage {
  const width = a.width + b.width;
  const height = Math.max(a.height, b.height);
  const data = new Uint8Array(width * height * 3);
  for (const [img, x0] of [
    [a, 0],
    [b, a.width],
  ] as const)
    for (let y = 0; y < img.height; y++)
      data.set(img.data.subarray(y * img.width * 3, (y + 1) * img.width * 3), (y * width + x0) * 3);
  return { width, height, data };
}

const mean = (pts: Point2[]): Point2 => [
  pts.reduce((s, p) => s + p[0], 0) / pts.length,
  pts.reduce((s, p) => s + p[1], 0) / pts.length,
];

/**
 * The crop holds the face: all landmarks inside, sensible size, eyes roughly
 * level; rotation-aligned crops (the reference's rule) put the eye-centre →
 * lip-centre axis exactly vertical.
 */
function expectGoodCrop(lmkCrop: Point2[], dsize = 512, aligned = true): void {
  expect(lmkCrop.length).toBe(468);
  for (const [x, y] of lmkCrop) {
    expect(x).toBeGreaterThan(0);
    expect(x).toBeLessThan(dsize);
    expect(y).toBeGreaterThan(0);
    expect(y).toBeLessThan(dsize);
  }
  const xs = lmkCrop.map((p) => p[0]);
  const ys = lmkCrop.map((p) => p[1]);
  const extent = Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys));
  expect(extent / dsize).toBeGreaterThan(0.25);
  expect(extent / dsize).toBeLessThan(0.7);
  const l = mean(FM_EYE_L.map((i) => lmkCrop[i]));
  const r = mean(FM_EYE_R.map((i) => lmkCrop[i]));
  const roll = (Math.atan2(r[1] - l[1], r[0] - l[0]) * 180) / Math.PI;
  expect(Math.abs(roll)).toBeLessThan(10);
  if (aligned) {
    const [eye, lip] = parsePt2(lmkCrop);
    const tilt = (Math.atan2(lip[0] - eye[0], lip[1] - eye[1]) * 180) / Math.PI;
    expect(Math.abs(tilt)).toBeLessThan(0.01);
  }
}

const HAVE_MEDIA = existsSync(join(MEDIA_DIR, 's0.jpg'));

describe.skipIf(!HAVE_MEDIA)('faces on real media', () => {
  const images: Record<string, RgbImage> = {};
  const found: Record<string, Face[]> = {};

  beforeAll(async () => {
    await loadFaceDetector();
    for (const f of ['s0.jpg', 's9.jpg', 'd12.jpg']) images[f] = await readImage(join(MEDIA_DIR, f));
    images['d0.mp4#0'] = readFrames(join(MEDIA_DIR, 'd0.mp4'), 1, 512, 512)[0];
    for (const [k, img] of Object.entries(images)) found[k] = await (await loadFaceDetector()).detect(img);
  });

  it('finds exactly one face in each photo and frame, with 468 landmarks on it', () => {
    for (const [k, faces] of Object.entries(found)) {
      expect(faces.length, k).toBe(1);
      const f = faces[0];
      expect(f.landmarks.length).toBe(468);
      expect(f.score).toBeGreaterThan(0.5);
      const [x0, y0, x1, y1] = f.box;
      const { width, height } = images[k];
      expect(x0).toBeGreaterThan(0);
      expect(y0).toBeGreaterThan(0);
      expect(x1).toBeLessThan(width);
      expect(y1).toBeLessThan(height);
      expect(x1 - x0).toBeGreaterThan(0.05 * width);
    }
  });

  it('source crop: 512 and 256 images, M_c2o inverse of M_o2c, face held and level', async () => {
    for (const k of Object.keys(images)) {
      const c = await (await loadFaceDetector()).cropSourceImage(images[k], { name: k });
      expect(c.imgCrop.width).toBe(512);
      expect(c.imgCrop.data.length).toBe(512 * 512 * 3);
      expect(c.imgCrop256.data.length).toBe(256 * 256 * 3);
      expectGoodCrop(c.lmkCrop);
      // M_c2o maps the crop landmarks back onto the original ones
      const [a, b, cc, d, e, f] = c.M_c2o;
      c.lmkCrop.forEach(([x, y], i) => {
        expect(Math.abs(a * x + b * y + cc - c.lmk[i][0])).toBeLessThan(1e-3);
        expect(Math.abs(d * x + e * y + f - c.lmk[i][1])).toBeLessThan(1e-3);
      });
      expect(c.lmkCrop256[0][0]).toBeCloseTo(c.lmkCrop[0][0] / 2, 6);
    }
  });

  it('eye and lip ratios are in sensible ranges; the open mouth (d12) reads wider than closed ones', () => {
    const lip: Record<string, number> = {};
    for (const [k, faces] of Object.entries(found)) {
      const [[l, r]] = calcEyeCloseRatio(faces[0].landmarks);
      expect(l, k).toBeGreaterThan(0.2);
      expect(l, k).toBeLessThan(0.6);
      expect(r, k).toBeGreaterThan(0.2);
      expect(r, k).toBeLessThan(0.6);
      lip[k] = calcLipCloseRatio(faces[0].landmarks)[0][0];
      expect(lip[k]).toBeGreaterThanOrEqual(0);
      expect(lip[k]).toBeLessThan(0.6);
    }
    expect(lip['d12.jpg']).toBeGreaterThan(0.1);
    expect(lip['s9.jpg']).toBeLessThan(0.05);
    expect(lip['d12.jpg']).toBeGreaterThan(3 * lip['s9.jpg']);
  });

  it('all-faces path on a synthetic group photo: two faces, largest first, face index option', async () => {
    const group = sideBySide(images['d12.jpg'], images['d0.mp4#0']);
    const all = await (await loadFaceDetector()).cropSourceImageAll(group, { name: 'group' });
    expect(all.length).toBe(2);
    // d12's face (left, larger) first
    expect(all[0].face.box[2]).toBeLessThan(720);
    expect(all[1].face.box[0]).toBeGreaterThan(720);
    for (const c of all) expectGoodCrop(c.lmkCrop);
    const second = await (await loadFaceDetector()).cropSourceImage(group, { faceIndex: 1, name: 'group' });
    expect(second.M_c2o[2]).toBeCloseTo(all[1].M_c2o[2], 3);
    await expect((await loadFaceDetector()).cropSourceImage(group, { faceIndex: 2, name: 'group' })).rejects.toThrow(/face index 2 out of range: 2 face/);
  });

  it('driving video crop: tracked frames share one averaged axis-aligned box', async () => {
    const frames = readFrames(join(MEDIA_DIR, 'd0.mp4'), 3, 512, 512);
    const before = tf.memory().numTensors;
    const r = await (await loadFaceDetector()).cropDrivingVideo(frames, { name: 'd0.mp4' });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.crops.length).toBe(3);
    expect(r.frameIndices).toEqual([0, 1, 2]);
    const [l, t, rr, b] = r.bbox;
    expect(rr - l).toBeCloseTo(b - t, 6);
    for (const c of r.crops) {
      expect(c.M_o2c).toEqual(r.crops[0].M_o2c);
      expect(c.M_o2c[1]).toBe(0); // no rotation
      expect(c.imgCrop256.width).toBe(256);
      expectGoodCrop(c.lmkCrop, 512, false);
    }
  });

  it("a photo without a face gives 'no face found in <file>'", async () => {
    const flat: RgbImage = { width: 320, height: 240, data: new Uint8Array(320 * 240 * 3).fill(128) };
    expect(await (await loadFaceDetector()).detect(flat)).toEqual([]);
    await expect((await loadFaceDetector()).cropSourceImage(flat, { name: 'flat.png' })).rejects.toThrow('no face found in flat.png');
  });
});
