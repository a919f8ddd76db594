import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { MEDIA_DIR } from './helpers/paths.js';
import { type Face } from '../src/face/detector.js';
import { loadFaceDetector } from '../src/node/face_models.js';
import { FM_EYE_L, FM_EYE_R, cropImage, cropImageByBbox, parsePt2 } from '../src/face/crop.js';
import { drivingBbox } from '../src/face/detector.js';
import { Driving } from '../src/pipeline/driving.js';
import { LivePortrait } from '../src/pipeline/live_portrait.js';
import { FaceIndexError, NoFaceError } from '../src/errors.js';
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
      const lmk = found[k][0].landmarks;
      const c = cropImage(images[k], lmk);
      expect(c.imgCrop.width).toBe(512);
      expect(c.imgCrop.data.length).toBe(512 * 512 * 3);
      expect(c.imgCrop256.data.length).toBe(256 * 256 * 3);
      expectGoodCrop(c.lmkCrop);
      // M_c2o maps the crop landmarks back onto the original ones
      const [a, b, cc, d, e, f] = c.M_c2o;
      c.lmkCrop.forEach(([x, y], i) => {
        expect(Math.abs(a * x + b * y + cc - lmk[i][0])).toBeLessThan(1e-3);
        expect(Math.abs(d * x + e * y + f - lmk[i][1])).toBeLessThan(1e-3);
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

  it('all-faces path on a synthetic group photo: two faces, largest first, face index option (preparePortrait)', async () => {
    const group = sideBySide(images['d12.jpg'], images['d0.mp4#0']);
    const lp = networkFree();
    const all = await lp.preparePortrait(group, { allFaces: true, maxDim: 0, name: 'group' });
    expect(all.faces.length).toBe(2);
    expect(all.facesFound).toBe(2);
    // d12's face (left, larger) first
    expect(all.faces[0].landmarks!.every(([x]) => x < 720)).toBe(true);
    expect(all.faces[1].landmarks!.every(([x]) => x > 720)).toBe(true);
    for (const f of all.faces) expectGoodCrop(f.crop.lmkCrop);
    const second = await lp.preparePortrait(group, { faceIndex: 1, maxDim: 0, name: 'group' });
    expect(second.faces[0].crop.M_c2o[2]).toBeCloseTo(all.faces[1].crop.M_c2o[2], 3);
    const e = await lp.preparePortrait(group, { faceIndex: 2, maxDim: 0, name: 'group' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FaceIndexError);
    expect((e as Error).message).toMatch(/face index 2 is out of range: 2 face\(s\) found in group/);
  });

  it('driving video crop (Driving.video): tracked frames share one averaged axis-aligned box', async () => {
    const frames = readFrames(join(MEDIA_DIR, 'd0.mp4'), 3, 512, 512).map((f) => sideBySide(f, f)); // not square: cropped
    const video = { name: 'd0x2', width: frames[0].width, height: frames[0].height, fps: 25, frameCount: 3, frames: async function* () { yield* frames; } };
    const before = tf.memory().numTensors;
    const plan = await Driving.video(video).plan({ detector: loadFaceDetector });
    const items = [];
    for await (const it of plan.frames()) items.push(it);
    expect(tf.memory().numTensors).toBe(before);
    expect([plan.isVideo, plan.count, items.length]).toEqual([true, 3, 3]);
    // The one box: the mean of the frames' tracked driving boxes, square; every crop is that box of its frame.
    const det = await loadFaceDetector();
    const lmks: Point2[][] = [];
    let prev: Point2[] | undefined;
    for (const f of frames) lmks.push((prev = (await det.track(f, prev))!.landmarks));
    const box = drivingBbox(lmks);
    expect(box[2] - box[0]).toBeCloseTo(box[3] - box[1], 6);
    for (const [i, it] of items.entries()) {
      expect(it.panel!.width).toBe(256);
      expect(Buffer.from(it.panel!.data).equals(Buffer.from(cropImageByBbox(frames[i], box).imgCrop256.data))).toBe(true);
    }
    // Not one box per frame: the frames' own boxes differ from the averaged one.
    expect(drivingBbox([lmks[0]])).not.toEqual(box);
  });

  it("a photo without a face gives NoFaceError 'no face found in the source <file>'", async () => {
    const flat: RgbImage = { width: 320, height: 240, data: new Uint8Array(320 * 240 * 3).fill(128) };
    expect(await (await loadFaceDetector()).detect(flat)).toEqual([]);
    const e = await networkFree().preparePortrait(flat, { name: 'flat.png' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(NoFaceError);
    expect((e as Error).message).toBe('no face found in the source flat.png');
  });
});

/** A LivePortrait whose F and M are stand-ins: the face finding, cropping and choosing run for real. */
function networkFree(): LivePortrait {
  return Object.assign(Object.create(LivePortrait.prototype), {
    async prepareSource() {
      return { f_s: tf.zeros([1]), x_s: tf.zeros([1]), R_s: tf.zeros([1]), x_c_s: tf.zeros([1]), x_s_info: {} };
    },
    disposeSource(s: { f_s: tf.Tensor; x_s: tf.Tensor; R_s: tf.Tensor; x_c_s: tf.Tensor }) {
      tf.dispose([s.f_s, s.x_s, s.R_s, s.x_c_s]);
    },
  }) as LivePortrait;
}
