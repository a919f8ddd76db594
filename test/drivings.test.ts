// Beyond the reference (issue 24): driving motion smoothed, a chosen or
// automatic reference frame, and one driving per face of a group photo.
// Figures are computed here from their definitions, never by the code
// under test; W and G are a cheap stand-in where frames are rendered.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Driving } from '../src/pipeline/driving.js';
import { LivePortrait, ReferenceControl } from '../src/pipeline/live_portrait.js';
import { loadLivePortrait } from '../src/node/load.js';
import { loadTemplate } from '../src/node/files.js';
import { readImage } from '../src/node/image_files.js';
import { CausalMotionSmoother, smoothMotion } from '../src/motion/smooth.js';
import { resolveOptions } from '../src/motion/options.js';
import type { MotionFrame, MotionTemplate } from '../src/formats/template.js';
import type { RgbImage } from '../src/image/image.js';
import { MEDIA_DIR } from './helpers/paths.js';

const laughPath = join(MEDIA_DIR, 'laugh.pkl');
const hasMedia = existsSync(laughPath);

/** Mean absolute second difference over frames of the given series [frame][k]. */
function jitter(s: number[][]): number {
  let sum = 0;
  let n = 0;
  for (let t = 1; t + 1 < s.length; t++)
    for (let k = 0; k < s[t].length; k++) {
      sum += Math.abs(s[t + 1][k] - 2 * s[t][k] + s[t - 1][k]);
      n++;
    }
  return sum / n;
}
/** Pitch, yaw, roll (degrees) of the reference's transposed matrix, written out here: Rᵀ = Rz Ry Rx. */
function degrees(R: ArrayLike<number>): number[] {
  const d = 180 / Math.PI;
  return [Math.atan2(R[5], R[8]) * d, Math.asin(-R[2]) * d, Math.atan2(R[1], R[0]) * d];
}
const exps = (fs: MotionFrame[]) => fs.map((f) => Array.from(f.exp));
const poses = (fs: MotionFrame[]) => fs.map((f) => degrees(f.R));

function expectOrthonormal(R: ArrayLike<number>): void {
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++) {
      let dot = 0;
      for (let k = 0; k < 3; k++) dot += R[i * 3 + k] * R[j * 3 + k];
      expect(Math.abs(dot - (i === j ? 1 : 0))).toBeLessThan(1e-5);
    }
  const det = R[0] * (R[4] * R[8] - R[5] * R[7]) - R[1] * (R[3] * R[8] - R[5] * R[6]) + R[2] * (R[3] * R[7] - R[4] * R[6]);
  expect(det).toBeCloseTo(1, 5);
}

/** A rotation (the reference's transposed matrix) from degrees, written out here. */
function rotation(pitch: number, yaw: number, roll: number): Float32Array {
  const [x, y, z] = [pitch, yaw, roll].map((a) => (a * Math.PI) / 180);
  const Rx = [1, 0, 0, 0, Math.cos(x), -Math.sin(x), 0, Math.sin(x), Math.cos(x)];
  const Ry = [Math.cos(y), 0, Math.sin(y), 0, 1, 0, -Math.sin(y), 0, Math.cos(y)];
  const Rz = [Math.cos(z), -Math.sin(z), 0, Math.sin(z), Math.cos(z), 0, 0, 0, 1];
  const mul = (a: number[], b: number[]) => Array.from({ length: 9 }, (_, i) => [0, 1, 2].reduce((s, k) => s + a[Math.floor(i / 3) * 3 + k] * b[k * 3 + (i % 3)], 0));
  const M = mul(mul(Rz, Ry), Rx);
  return Float32Array.from({ length: 9 }, (_, i) => M[(i % 3) * 3 + Math.floor(i / 3)]);
}

describe('driving smoothing (drivingSmooth)', () => {
  it.skipIf(!hasMedia)("laugh.pkl at the recommended 1e-5: jitter of expression and pose at most half the raw's, rotations orthonormal, no lag at the peak", () => {
    const raw = loadTemplate(laughPath).frames;
    const sm = smoothMotion(raw, { observationVariance: 1e-5 });
    expect(sm.length).toBe(raw.length);
    expect(jitter(exps(sm))).toBeLessThanOrEqual(0.5 * jitter(exps(raw)));
    expect(jitter(poses(sm))).toBeLessThanOrEqual(0.5 * jitter(poses(raw)));
    for (const f of sm) expectOrthonormal(f.R);
    // Smoothing keeps the motion: the yaw stays within a degree of the raw's, frame by frame.
    const yr = poses(raw).map((p) => p[1]);
    const ys = poses(sm).map((p) => p[1]);
    for (let t = 0; t < yr.length; t++) expect(Math.abs(ys[t] - yr[t])).toBeLessThan(1);
    // Stronger smoothing, smoother.
    const more = smoothMotion(raw, { observationVariance: 1e-4 });
    expect(jitter(exps(more))).toBeLessThan(jitter(exps(sm)));
    // The live filter (forward pass) smooths too.
    const c = new CausalMotionSmoother({ observationVariance: 1e-4 });
    const live = raw.map((f) => c.push(f));
    expect(jitter(exps(live))).toBeLessThan(0.5 * jitter(exps(raw)));
    for (const f of live) expectOrthonormal(f.R);
  });

  it('a constant motion comes back unchanged (file smoother and live filter); x_s follows the smoothed motion', () => {
    const R = rotation(8, -20, 5);
    const exp = Float32Array.from({ length: 63 }, (_, i) => Math.sin(i) * 0.02);
    const kp = Float32Array.from({ length: 63 }, (_, i) => Math.cos(i) * 0.3);
    const f: MotionFrame = { R, exp, t: Float32Array.of(0.01, -0.02, 0), scale: 1.3, kp, x_s: new Float32Array(63), lipRatio: 0.2 };
    const frames = Array.from({ length: 12 }, () => f);
    const c = new CausalMotionSmoother({ observationVariance: 1e-3 });
    for (const out of [...smoothMotion(frames, { observationVariance: 1e-3 }), ...frames.map((x) => c.push(x))]) {
      for (let k = 0; k < 9; k++) expect(out.R[k]).toBeCloseTo(R[k], 6);
      for (let k = 0; k < 63; k++) expect(out.exp[k]).toBeCloseTo(exp[k], 6);
      expect(out.scale).toBeCloseTo(1.3, 6);
      expect(out.lipRatio).toBe(0.2);
      // x_s = s (kp R + exp) + t (t without z), written out here.
      for (let n = 0; n < 21; n++)
        for (let j = 0; j < 3; j++) {
          let s = 0;
          for (let i = 0; i < 3; i++) s += kp[n * 3 + i] * R[i * 3 + j];
          expect(out.x_s![n * 3 + j]).toBeCloseTo(1.3 * (s + exp[n * 3 + j]) + (j < 2 ? f.t[j] : 0), 5);
        }
    }
  });

  it('rotations are smoothed as angles: a yaw swinging through ±170° (roll flipping) stays a rotation, no element-wise shrinking', () => {
    const frames: MotionFrame[] = Array.from({ length: 20 }, (_, t) => ({ R: rotation(0, 30 * Math.sin(t / 2), 175 + 10 * (t % 2)), exp: new Float32Array(63), t: new Float32Array(3), scale: 1 }));
    for (const f of smoothMotion(frames, { observationVariance: 1e-3 })) {
      expectOrthonormal(f.R);
      // roll near 180° (unwrapped, not averaged to 0)
      expect(Math.abs(Math.abs(degrees(f.R)[2]) - 180)).toBeLessThan(10);
    }
  });

  it('options: defaults keep the reference (0, frame 0); errors name the option', () => {
    expect(resolveOptions({})).toMatchObject({ drivingSmooth: 0, referenceFrame: 0 });
    expect(() => resolveOptions({ drivingSmooth: -1 })).toThrow(/^drivingSmooth must be 0 \(off\) or a positive variance, got -1$/);
    expect(() => resolveOptions({ referenceFrame: 'first' as never })).toThrow(/^referenceFrame must be a frame index \(0 or more\) or 'auto', got "first"$/);
    expect(() => resolveOptions({ referenceFrame: 1.5 })).toThrow(/referenceFrame/);
  });
});

// ---------------------------------------------------------------- rendering with a stand-in for W and G

let lp: LivePortrait;
/** The synthetic model with W+G replaced by a flat image, and F by a stand-in feature (M runs: the keypoints are real). */
function fast(base: LivePortrait): LivePortrait {
  const m = Object.create(base) as LivePortrait;
  m.warpDecode = (_f, _xs, x_d) => tf.tidy(() => tf.add(tf.zeros([1, 512, 512, 3]), tf.sigmoid(tf.mean(x_d))) as tf.Tensor4D);
  m.prepareSource = async (img, ratios) => {
    const kp = await base.prepareSourceKeypoints(img, ratios);
    return { ...kp, f_s: tf.zeros([1, 1, 1, 1, 1]) as tf.Tensor5D, x_c_s: kp.x_s_info.kp };
  };
  return m;
}
beforeAll(async () => {
  lp = await loadLivePortrait('synthetic', { seed: 1 });
});
afterAll(async () => {
  await lp?.dispose();
});

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('reference frame (referenceFrame)', () => {
  /** A talking template: every frame smiling (large δ) and turned, but frame `neutral` (δ ≈ 0, pose of the source). */
  function planted(n: number, neutral: number, sourceR: Float32Array): MotionTemplate {
    const frames = Array.from({ length: n }, (_, t): MotionFrame => {
      const on = t !== neutral;
      return {
        R: on ? rotation(5 + t, 15 - t, 3) : sourceR,
        exp: Float32Array.from({ length: 63 }, (_, i) => (on ? 0.03 + 0.01 * Math.sin(i + t) : 0.001 * Math.cos(i))),
        t: Float32Array.of(0.01 * t, 0, 0),
        scale: 1.2,
      };
    });
    return { fps: 25, frames };
  }

  it('auto picks the planted neutral frame, logs it, and motion is taken against it (x_d = x_s there)', async () => {
    const src = await fast(lp).prepareSource({ width: 256, height: 256, data: new Uint8Array(256 * 256 * 3).fill(128) });
    try {
      const sourceR = (await src.R_s.data()) as Float32Array;
      const tpl = planted(9, 6, sourceR);
      const log: string[] = [];
      const xs = (await src.x_s.data()) as Float32Array;
      const xds: Float32Array[] = [];
      for await (const f of fast(lp).animateFaces([src], Driving.template(tpl), { referenceFrame: 'auto', stitching: false, drivingOption: 'pose-friendly', log: (l) => log.push(l) })) xds.push(f.faces[0].x_d);
      expect(xds.length).toBe(9);
      expect(log.join('\n')).toMatch(/reference frame: 6 of the driving \(auto: the most neutral of 9 frames/);
      // Relative motion against frame 6: at frame 6 the driving keypoints are the source's own.
      const diffs = xds.map((x) => maxDiff(x, xs));
      expect(diffs[6]).toBeLessThan(1e-5);
      for (const [i, d] of diffs.entries()) if (i !== 6) expect(d).toBeGreaterThan(1e-3);
      // A number: that frame; past the end: one line naming the option.
      const xd3: Float32Array[] = [];
      for await (const f of fast(lp).animateFaces([src], Driving.template(tpl), { referenceFrame: 3, stitching: false, drivingOption: 'pose-friendly' })) xd3.push(f.faces[0].x_d);
      expect(maxDiff(xd3[3], xs)).toBeLessThan(1e-5);
      const e = await (async () => {
        for await (const _ of fast(lp).animateFaces([src], Driving.template(tpl), { referenceFrame: 9 }));
      })().catch((x: Error) => x);
      expect((e as Error).message).toBe('referenceFrame 9 is past the last frame of the driving (9 frames)');
      // Live input: a ReferenceControl ("set neutral") makes the current frame the reference.
      const control = new ReferenceControl();
      const xdl: Float32Array[] = [];
      async function* liveMotion() {
        for (const [i, f] of tpl.frames.entries()) {
          if (i === 4) control.setNeutral();
          yield f;
        }
      }
      for await (const f of fast(lp).animateFaces([src], Driving.frames(liveMotion()), { referenceControl: control, stitching: false, drivingOption: 'pose-friendly' })) xdl.push(f.faces[0].x_d);
      expect(maxDiff(xdl[0], xs)).toBeLessThan(1e-5); // frame 0 until set
      expect(maxDiff(xdl[4], xs)).toBeLessThan(1e-5);
      expect(maxDiff(xdl[5], xs)).toBeGreaterThan(1e-3);
    } finally {
      lp.disposeSource(src);
    }
  });
});

/** First frame of a video as RGB (bundled ffmpeg). */
function firstFrame(path: string, w: number, h: number): RgbImage {
  const ffmpeg = (createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg') as { path: string }).path;
  const r = spawnSync(ffmpeg, ['-v', 'error', '-i', path, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { maxBuffer: 64 << 20 });
  return { width: w, height: h, data: new Uint8Array(r.stdout.subarray(0, w * h * 3)) };
}
function sideBySide(a: RgbImage, b: RgbImage): RgbImage {
  const width = a.width + b.width;
  const height = Math.max(a.height, b.height);
  const data = new Uint8Array(width * height * 3);
  for (const [img, x0] of [[a, 0], [b, a.width]] as const) for (let y = 0; y < img.height; y++) data.set(img.data.subarray(y * img.width * 3, (y + 1) * img.width * 3), (y * width + x0) * 3);
  return { width, height, data };
}

describe('one driving per face', () => {
  it.skipIf(!hasMedia)('a two-face photo driven by two templates, left to right: each face follows its own; the shorter holds its last frame; a face without one stays still', async () => {
    // The smaller face (a d0 frame) on the left, the larger (d12) on the right: faces[0] (largest) is the right one.
    const group = sideBySide(firstFrame(join(MEDIA_DIR, 'd0.mp4'), 512, 512), await readImage(join(MEDIA_DIR, 'd12.jpg')));
    const portrait = await fast(lp).preparePortrait(group, { allFaces: true, maxDim: 0, name: 'group' });
    try {
      expect(portrait.faces.length).toBe(2);
      const cx = portrait.faces.map((f) => f.landmarks!.reduce((s, p) => s + p[0], 0) / f.landmarks!.length);
      expect(cx[0]).toBeGreaterThan(cx[1]); // largest first is the right face
      const laugh = loadTemplate(laughPath);
      const A: MotionTemplate = { fps: 25, frames: laugh.frames.slice(0, 5) };
      const B: MotionTemplate = { fps: 25, frames: laugh.frames.slice(30, 33) };
      const m = fast(lp);
      const frames = [];
      for await (const f of m.animatePortrait(portrait, [Driving.template(A), Driving.template(B)])) frames.push(f);
      expect(frames.length).toBe(5); // the longest driving
      expect(frames[0].image.width).toBe(group.width);
      // Each face alone with its driving: left (faces[1]) by A, right (faces[0]) by B.
      const alone = async (k: number, tpl: MotionTemplate) => {
        const out: Float32Array[] = [];
        for await (const f of m.animateFaces([portrait.faces[k].info], Driving.template(tpl))) out.push(f.faces[0].x_d);
        return out;
      };
      const left = await alone(1, A);
      const right = await alone(0, B);
      for (let i = 0; i < 5; i++) {
        expect(maxDiff(frames[i].x_d[1], left[i])).toBeLessThan(1e-6);
        expect(maxDiff(frames[i].x_d[0], right[Math.min(i, 2)])).toBeLessThan(1e-6); // B ended after 3 frames: held
      }
      expect(maxDiff(frames[1].x_d[1], frames[0].x_d[1])).toBeGreaterThan(1e-4); // A moves on
      // Only the right face driven (a hole on the left): the left face stays still, x_d = x_s.
      const xsLeft = (await portrait.faces[1].info.x_s.data()) as Float32Array;
      const still = [];
      for await (const f of m.animatePortrait(portrait, [null, Driving.template(B)])) still.push(f);
      expect(still.length).toBe(3);
      for (const [i, f] of still.entries()) {
        expect(maxDiff(f.x_d[1], xsLeft)).toBe(0);
        expect(maxDiff(f.x_d[0], right[i])).toBeLessThan(1e-6);
      }
      const e = await (async () => {
        for await (const _ of m.animatePortrait(portrait, [Driving.template(A), Driving.template(B), Driving.template(A)]));
      })().catch((x: Error) => x);
      expect((e as Error).message).toBe('drivings: 3 given for 2 face(s) in group; give at most one per face');
    } finally {
      portrait.dispose();
    }
  });
});
