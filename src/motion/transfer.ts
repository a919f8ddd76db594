/**
 * Motion transfer: the driving keypoints x_d of one output frame from the
 * source's keypoint information and a driving motion frame, with the
 * reference pipeline's options (relative/absolute motion, animation region,
 * expression-friendly multiplier, stitching, eye/lip retargeting, lip
 * normalisation, driving multiplier; source-video mode with smoothed motion).
 *
 *   x_d = s · (x_c,s R + δ) + t,   t_z = 0                 (Eqn. 2)
 *
 * where R, δ, s, t mix source and driving motion as the options say.
 */
import * as tf from '@tensorflow/tfjs';
import type { StitchingRetargetingModule } from '../models/stitching_retargeting_module.js';
import type { KpInfo } from './camera.js';
import type { AnimationOptions } from './options.js';
import type { MotionFrame } from '../formats/template.js';
import { NUM_KP } from '../models/types.js';
import { LipArrayMissingError } from '../errors.js';


/** The source's keypoint information (one image, batch 1). */
export interface SourceKeypoints {
  /** Refined motion of the source: kp (x_c,s), exp, t, scale, degrees. */
  x_s_info: KpInfo;
  /** Source rotation [1, 3, 3]. */
  R_s: tf.Tensor3D;
  /** Source keypoints x_s [1, 21, 3]. */
  x_s: tf.Tensor3D;
  /** Eye-open ratios (left, right) of the source, from landmarks, where known. */
  eyeRatio?: readonly number[];
  /** Lip-open ratio of the source, where known. */
  lipRatio?: number;
}

/** How the frame is driven (defaults: driving video, source image). */
export interface DrivingContext {
  /** false for image-driven animation (a single driving image). */
  drivingIsVideo?: boolean;
  /** true when the source is a video frame (see `smoothedExp`, `smoothedR`). */
  sourceIsVideo?: boolean;
  /**
   * The neutral-lip expression [21 × 3] of the reference (its
   * `lip_array.pkl`), subtracted from the driving expression in image-driven
   * relative mode instead of a first frame's.
   */
  lipArray?: ArrayLike<number>;
  /** Source-video mode: this frame's Kalman-smoothed expression target [63]. */
  smoothedExp?: ArrayLike<number>;
  /** Source-video mode: this frame's smoothed rotation [9]. */
  smoothedR?: ArrayLike<number>;
  /** Source-video mode with sourceVideoEyeRetargeting: the eye ratio to hold (first source frame's). */
  sourceVideoEyeTarget?: number;
}

// Expression entries the reference copies in absolute mode (and for source videos).
const EXP_ROWS_FULL = [1, 2, 6, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20];
const EXP_ENTRIES_PARTIAL: [number, number][] = [[3, 1], [4, 1], [5, 2], [8, 2], [9, 1], [9, 2]];
/** Keypoints of the lips and of the eyes. */
export const LIP_KP = [6, 12, 14, 17, 19, 20];
export const EYE_KP = [11, 13, 15, 16, 18];

function mask(rows: number[], entries: [number, number][] = []): boolean[] {
  const m = new Array<boolean>(NUM_KP * 3).fill(false);
  for (const r of rows) for (let c = 0; c < 3; c++) m[r * 3 + c] = true;
  for (const [r, c] of entries) m[r * 3 + c] = true;
  return m;
}
const MASK_EXP = mask(EXP_ROWS_FULL, EXP_ENTRIES_PARTIAL);
const MASK_LIP = mask(LIP_KP);
const MASK_EYE = mask(EYE_KP);

/** where(mask, a, b) on [1, 21, 3]. */
function pick(m: boolean[], a: tf.Tensor, b: tf.Tensor): tf.Tensor3D {
  return tf.where(tf.tensor(m, [1, NUM_KP, 3], 'bool'), a, b) as tf.Tensor3D;
}

const kp3 = (v: ArrayLike<number>) => tf.tensor3d(Float32Array.from(v), [1, NUM_KP, 3]);
const mat3 = (v: ArrayLike<number>) => tf.tensor3d(Float32Array.from(v), [1, 3, 3]);

/** A motion frame's tensors [1, ...]. */
function frameTensors(f: MotionFrame) {
  return { R: mat3(f.R), exp: kp3(f.exp), t: tf.tensor2d(Float32Array.from(f.t), [1, 3]), scale: tf.tensor2d([f.scale], [1, 1]) };
}

/**
 * x_d before the expression-friendly multiplier, stitching and retargeting
 * (the reference's `x_d_i_new` after Eqn. 2).
 */
export function rawDrivingKeypoints(source: SourceKeypoints, frame: MotionFrame, first: MotionFrame, opts: AnimationOptions, ctx: DrivingContext = {}): tf.Tensor3D {
  const drivingIsVideo = ctx.drivingIsVideo ?? true;
  const sourceIsVideo = ctx.sourceIsVideo ?? false;
  const region = opts.animationRegion;
  const posed = region === 'all' || region === 'pose';
  if (sourceIsVideo && (region === 'all' || region === 'exp' || region === 'lip' || region === 'eyes') && !ctx.smoothedExp)
    throw new Error('source-video mode needs the smoothed expression of the frame (DrivingContext.smoothedExp)');
  if (sourceIsVideo && posed && !ctx.smoothedR) throw new Error('source-video mode needs the smoothed rotation of the frame (DrivingContext.smoothedR)');
  return tf.tidy(() => {
    const s = source.x_s_info;
    const d = frameTensors(frame);
    const d0 = frameTensors(first);
    const expS = s.exp;
    let R: tf.Tensor3D;
    let delta: tf.Tensor3D;
    let scale: tf.Tensor;
    let t: tf.Tensor;
    if (opts.relativeMotion) {
      if (posed) R = sourceIsVideo ? mat3(ctx.smoothedR!) : (tf.matMul(tf.matMul(d.R, d0.R, false, true), source.R_s) as tf.Tensor3D);
      else R = source.R_s;
      let expRel: tf.Tensor3D | undefined;
      if (!sourceIsVideo) {
        let base: tf.Tensor;
        if (drivingIsVideo) base = d0.exp;
        else if (region === 'eyes') base = tf.zeros([1, NUM_KP, 3]);
        else {
          if (!ctx.lipArray) throw new LipArrayMissingError("image-driven relative motion needs the reference's neutral-lip expression (lip_array.pkl): pass lipArray");
          if (ctx.lipArray.length !== NUM_KP * 3) throw new Error(`lipArray must have ${NUM_KP * 3} values, got ${ctx.lipArray.length}`);
          base = kp3(ctx.lipArray);
        }
        expRel = tf.add(expS, tf.sub(d.exp, base)) as tf.Tensor3D;
      } else expRel = kp3(ctx.smoothedExp!);
      if (region === 'all' || region === 'exp') delta = sourceIsVideo ? pick(MASK_EXP, expRel, expS) : expRel;
      else if (region === 'lip') delta = pick(MASK_LIP, expRel, expS);
      else if (region === 'eyes') delta = pick(MASK_EYE, expRel, expS);
      else delta = expS;
      scale = region === 'all' && !sourceIsVideo ? tf.mul(s.scale, tf.div(d.scale, d0.scale)) : s.scale;
      t = posed && !sourceIsVideo ? tf.add(s.t, tf.sub(d.t, d0.t)) : s.t;
    } else {
      R = posed ? (sourceIsVideo ? mat3(ctx.smoothedR!) : d.R) : source.R_s;
      const expD = sourceIsVideo ? kp3(ctx.smoothedExp!) : d.exp;
      if (region === 'all' || region === 'exp') delta = pick(MASK_EXP, expD, expS);
      else if (region === 'lip') delta = pick(MASK_LIP, expD, expS);
      else if (region === 'eyes') delta = pick(MASK_EYE, expD, expS);
      else delta = expS;
      scale = s.scale;
      t = posed ? d.t : s.t;
    }
    const tXY0 = tf.mul(t.reshape([1, 1, 3]), tf.tensor([1, 1, 0], [1, 1, 3])); // zero tz
    return tf.add(tf.mul(scale.reshape([1, 1, 1]), tf.add(tf.matMul(s.kp, R), delta)), tXY0) as tf.Tensor3D;
  });
}

// ---------------------------------------------------------------- convex hull

function sub3(p: ArrayLike<number>, i: number, j: number): [number, number, number] {
  return [p[3 * i] - p[3 * j], p[3 * i + 1] - p[3 * j + 1], p[3 * i + 2] - p[3 * j + 2]];
}
function cross(a: number[], b: number[]): [number, number, number] {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}
const dot = (a: number[], b: number[]) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

/** Area of the convex hull of 2-D points (monotone chain + shoelace). */
function hullArea2d(pts: [number, number][]): number {
  const p = [...pts].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (p.length < 3) return 0;
  const turn = (o: number[], a: number[], b: number[]) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const half = (list: [number, number][]) => {
    const h: [number, number][] = [];
    for (const q of list) {
      while (h.length >= 2 && turn(h[h.length - 2], h[h.length - 1], q) <= 0) h.pop();
      h.push(q);
    }
    h.pop();
    return h;
  };
  const hull = [...half(p), ...half([...p].reverse())];
  let a = 0;
  for (let i = 0; i < hull.length; i++) {
    const [x1, y1] = hull[i];
    const [x2, y2] = hull[(i + 1) % hull.length];
    a += x1 * y2 - x2 * y1;
  }
  return Math.abs(a) / 2;
}

/**
 * Volume of the convex hull of 3-D points ([n × 3], float64), as
 * scipy's ConvexHull(points).volume. Brute force over supporting planes
 * (fine for 21 keypoints): each facet, with all its coplanar points, adds
 * area · height / 3 measured from the centroid. 0 for degenerate sets.
 */
export function convexHullVolume(points: ArrayLike<number>): number {
  const n = Math.floor(points.length / 3);
  if (n < 4) return 0;
  let span = 0;
  for (let i = 0; i < points.length; i++) span = Math.max(span, Math.abs(points[i]));
  const eps = 1e-12 * Math.max(span, 1e-30) ** 3;
  const c = [0, 0, 0];
  for (let i = 0; i < n; i++) for (let k = 0; k < 3; k++) c[k] += points[3 * i + k] / n;
  const seen = new Set<string>();
  let vol = 0;
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++)
      for (let k = j + 1; k < n; k++) {
        const nrm = cross(sub3(points, j, i), sub3(points, k, i));
        const len = Math.hypot(...nrm);
        if (len * span <= eps) continue; // collinear
        let pos = 0;
        let neg = 0;
        const on: number[] = [];
        for (let m = 0; m < n; m++) {
          const s = dot(nrm, sub3(points, m, i));
          if (s > eps) pos++;
          else if (s < -eps) neg++;
          else on.push(m);
        }
        if (pos > 0 && neg > 0) continue;
        const key = on.join(',');
        if (seen.has(key)) continue;
        seen.add(key);
        // Facet: the coplanar points, projected onto an orthonormal basis of the plane.
        const u0 = sub3(points, j, i);
        const ul = Math.hypot(...u0);
        const u = u0.map((x) => x / ul);
        const nz = nrm.map((x) => x / len);
        const v = cross(nz, u);
        const pts2 = on.map((m): [number, number] => {
          const r = sub3(points, m, i);
          return [dot(r, u), dot(r, v)];
        });
        const area = hullArea2d(pts2);
        const h = Math.abs(dot(nz, [points[3 * i] - c[0], points[3 * i + 1] - c[1], points[3 * i + 2] - c[2]]));
        vol += (area * h) / 3;
      }
  return vol;
}

/**
 * The expression-friendly motion multiplier: sqrt(vol hull(x_s)) /
 * sqrt(vol hull(x_d,0)), the reference's `calc_motion_multiplier` (scipy's
 * ConvexHull(...).volume of the 21 3-D keypoints).
 */
export function motionMultiplier(x_s: ArrayLike<number>, x_d0: ArrayLike<number>): number {
  const vs = convexHullVolume(x_s);
  const vd = convexHullVolume(x_d0);
  if (!(vd > 0)) throw new Error('expression-friendly motion: the first driving keypoints are degenerate (hull volume 0); use drivingOption pose-friendly');
  return Math.sqrt(vs) / Math.sqrt(vd);
}

// ---------------------------------------------------------------- retargeting inputs

/** [c_s,eyes (left, right), c_d,eyes] → [1, 3] (the reference uses the driving frame's first value). */
export function combinedEyeRatio(source: readonly number[] | undefined, driving: number): tf.Tensor2D {
  if (!source || source.length < 2) throw new Error("eye retargeting needs the source's eye-open ratios (two values, left and right)");
  return tf.tensor2d([[source[0], source[1], driving]]);
}

/** [c_s,lip, c_d,lip] → [1, 2]. */
export function combinedLipRatio(source: number | undefined, driving: number): tf.Tensor2D {
  if (source === undefined) throw new Error("lip retargeting needs the source's lip-open ratio");
  return tf.tensor2d([[source, driving]]);
}

/** The lip offset that closes the source's mouth before animation, or undefined (flag_normalize_lip). */
export function lipDeltaBeforeAnimation(S: StitchingRetargetingModule, source: SourceKeypoints, opts: AnimationOptions): tf.Tensor3D | undefined {
  if (!opts.normalizeLip || !opts.relativeMotion || source.lipRatio === undefined) return undefined;
  if (source.lipRatio < opts.lipNormalizeThreshold) return undefined;
  return tf.tidy(() => S.retargetLip(source.x_s, combinedLipRatio(source.lipRatio, 0)));
}

/** The eye offset that holds the first source frame's eye opening (source-video mode), or undefined. */
export function eyeDeltaBeforeAnimation(S: StitchingRetargetingModule, source: SourceKeypoints, opts: AnimationOptions, ctx: DrivingContext): tf.Tensor3D | undefined {
  if (!opts.sourceVideoEyeRetargeting || !ctx.sourceIsVideo || ctx.sourceVideoEyeTarget === undefined || !source.eyeRatio) return undefined;
  return tf.tidy(() => S.retargetEye(source.x_s, combinedEyeRatio(source.eyeRatio, ctx.sourceVideoEyeTarget!)));
}

/** The eye target of source-video eye retargeting from the first source frame's eye ratios. */
export function sourceVideoEyeTarget(firstSourceEyeRatio: readonly number[], opts: AnimationOptions): number {
  const mean = (firstSourceEyeRatio[0] + firstSourceEyeRatio[1]) / 2;
  return mean < opts.sourceVideoEyeRetargetingThreshold ? 0.39 : mean;
}

/**
 * The first driving frame's keypoints and the expression-friendly motion
 * multiplier, computed once per source and first frame (as the reference
 * does before its frame loop), not every frame: two convex hulls and a
 * keypoint pass saved per frame.
 */
const expressionFriendlyCache = new WeakMap<MotionFrame, WeakMap<SourceKeypoints, { key: string; x_d0: Float32Array; mm: number }>>();

function expressionFriendlyKey(opts: AnimationOptions, ctx: DrivingContext): string {
  return JSON.stringify([opts, ctx.drivingIsVideo, ctx.sourceIsVideo, ctx.lipArray ? Array.from(ctx.lipArray) : null]);
}

function cachedBase(source: SourceKeypoints, first: MotionFrame, key: string): { x_d0: Float32Array; mm: number } | undefined {
  const hit = expressionFriendlyCache.get(first)?.get(source);
  return hit && hit.key === key ? hit : undefined;
}

function storeBase(source: SourceKeypoints, first: MotionFrame, key: string, x_d0: Float32Array, x_s: ArrayLike<number>): { x_d0: Float32Array; mm: number } {
  let bySource = expressionFriendlyCache.get(first);
  if (!bySource) expressionFriendlyCache.set(first, (bySource = new WeakMap()));
  const entry = { key, x_d0: Float32Array.from(x_d0), mm: motionMultiplier(x_s, x_d0) };
  bySource.set(source, entry);
  return entry;
}

function needsExpressionBase(opts: AnimationOptions, ctx: DrivingContext): boolean {
  return opts.relativeMotion && opts.drivingOption === 'expression-friendly' && !(ctx.sourceIsVideo ?? false) && (ctx.drivingIsVideo ?? true);
}

/**
 * Read asynchronously what drivingKeypoints needs of the host for this
 * source and first frame (the expression-friendly base), so that backends
 * without synchronous reads (webgpu in Node) never need one.
 */
export async function prepareDrivingKeypoints(source: SourceKeypoints, first: MotionFrame, opts: AnimationOptions, ctx: DrivingContext = {}): Promise<void> {
  if (!needsExpressionBase(opts, ctx)) return;
  const key = expressionFriendlyKey(opts, ctx);
  if (cachedBase(source, first, key)) return;
  const x_d0 = tf.tidy(() => rawDrivingKeypoints(source, first, first, opts, ctx));
  try {
    const [d0, xs] = await Promise.all([x_d0.data(), source.x_s.data()]);
    storeBase(source, first, key, d0 as Float32Array, xs);
  } finally {
    x_d0.dispose();
  }
}

function expressionFriendlyBase(source: SourceKeypoints, first: MotionFrame, opts: AnimationOptions, ctx: DrivingContext): { x_d0: Float32Array; mm: number } {
  const key = expressionFriendlyKey(opts, ctx);
  const hit = cachedBase(source, first, key);
  if (hit) return hit;
  // Synchronous fallback (prepareDrivingKeypoints avoids it).
  const x_d0 = tf.tidy(() => rawDrivingKeypoints(source, first, first, opts, ctx));
  const host = x_d0.dataSync() as Float32Array;
  x_d0.dispose();
  return storeBase(source, first, key, host, source.x_s.dataSync());
}

/**
 * The final driving keypoints x_d [1, 21, 3] of one frame: Eqn. 2 with the
 * options' mixing, then the expression-friendly multiplier, stitching or
 * retargeting, and the driving multiplier. `first` is the first driving
 * motion frame (relative motion is measured from it).
 */
export function drivingKeypoints(
  S: StitchingRetargetingModule,
  source: SourceKeypoints,
  frame: MotionFrame,
  first: MotionFrame,
  opts: AnimationOptions,
  ctx: DrivingContext = {},
): tf.Tensor3D {
  const drivingIsVideo = ctx.drivingIsVideo ?? true;
  const sourceIsVideo = ctx.sourceIsVideo ?? false;
  if (opts.eyeRetargeting && frame.eyeRatio === undefined) throw new Error("eye retargeting needs each driving frame's eye-open ratio (MotionFrame.eyeRatio)");
  if (opts.lipRetargeting && frame.lipRatio === undefined) throw new Error("lip retargeting needs each driving frame's lip-open ratio (MotionFrame.lipRatio)");
  return tf.tidy(() => {
    const x_s = source.x_s;
    let x_d = rawDrivingKeypoints(source, frame, first, opts, ctx);
    if (needsExpressionBase(opts, { drivingIsVideo, sourceIsVideo })) {
      const { x_d0, mm } = expressionFriendlyBase(source, first, opts, ctx);
      x_d = tf.add(tf.mul(tf.sub(x_d, kp3(x_d0)), mm), x_s) as tf.Tensor3D;
    }
    if (!opts.eyeRetargeting && !opts.lipRetargeting) {
      const lipBefore = lipDeltaBeforeAnimation(S, source, opts);
      const eyeBefore = eyeDeltaBeforeAnimation(S, source, opts, ctx);
      if (opts.stitching) x_d = S.stitching(x_s, x_d);
      if (lipBefore) x_d = tf.add(x_d, lipBefore) as tf.Tensor3D;
      if (eyeBefore) x_d = tf.add(x_d, eyeBefore) as tf.Tensor3D;
    } else {
      let acc: tf.Tensor3D = opts.relativeMotion ? x_s : x_d;
      if (opts.eyeRetargeting) acc = tf.add(acc, S.retargetEye(x_s, combinedEyeRatio(source.eyeRatio, frame.eyeRatio![0]))) as tf.Tensor3D;
      if (opts.lipRetargeting) acc = tf.add(acc, S.retargetLip(x_s, combinedLipRatio(source.lipRatio, frame.lipRatio!))) as tf.Tensor3D;
      x_d = opts.stitching ? S.stitching(x_s, acc) : acc;
    }
    return tf.add(x_s, tf.mul(tf.sub(x_d, x_s), opts.drivingMultiplier)) as tf.Tensor3D;
  });
}

// ---------------------------------------------------------------- source-video smoothing inputs

/** Row-major 3×3 product a · bᵀ. */
function mulABt(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const o = new Float64Array(9);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) o[3 * i + j] = a[3 * i] * b[3 * j] + a[3 * i + 1] * b[3 * j + 1] + a[3 * i + 2] * b[3 * j + 2];
  return o;
}
function mulAB(a: ArrayLike<number>, b: ArrayLike<number>): Float32Array {
  const o = new Float32Array(9);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) o[3 * i + j] = a[3 * i] * b[j] + a[3 * i + 1] * b[3 + j] + a[3 * i + 2] * b[6 + j];
  return o;
}

/**
 * The per-frame targets the reference smooths in source-video mode, before
 * smoothing: expression [63] and rotation [9] of output frame i, from the
 * source's motion frame i and the driving motion (frame i, first frame).
 */
export function sourceVideoTargets(
  src: MotionFrame,
  drv: MotionFrame,
  drv0: MotionFrame,
  opts: AnimationOptions,
  drivingIsVideo: boolean,
  lipArray?: ArrayLike<number>,
): { exp: Float32Array; R: Float32Array } {
  if (opts.relativeMotion) {
    const exp = new Float32Array(63);
    if (drivingIsVideo) for (let k = 0; k < 63; k++) exp[k] = src.exp[k] + (drv.exp[k] - drv0.exp[k]);
    else {
      if (!lipArray) throw new LipArrayMissingError("image-driven relative motion needs the reference's neutral-lip expression (lip_array.pkl): pass lipArray");
      for (let k = 0; k < 63; k++) exp[k] = src.exp[k] + (drv0.exp[k] - lipArray[k]);
    }
    const R = drivingIsVideo ? mulAB(mulABt(drv.R, drv0.R), src.R) : Float32Array.from(src.R);
    return { exp, R };
  }
  const d = drivingIsVideo ? drv : drv0;
  return { exp: Float32Array.from(d.exp), R: Float32Array.from(d.R) };
}

/** Source keypoint information as tensors from a motion frame that has kp and x_s (source-video mode). */
export function sourceKeypointsFromMotion(f: MotionFrame): SourceKeypoints {
  if (!f.kp || !f.x_s) throw new Error('source motion frames need kp and x_s (extract them with extractMotion)');
  const z = () => tf.zeros([1, 1]) as tf.Tensor2D;
  return {
    x_s_info: {
      kp: kp3(f.kp),
      exp: kp3(f.exp),
      t: tf.tensor2d(Float32Array.from(f.t), [1, 3]),
      scale: tf.tensor2d([f.scale], [1, 1]),
      pitch: z(),
      yaw: z(),
      roll: z(),
    },
    R_s: mat3(f.R),
    x_s: kp3(f.x_s),
    eyeRatio: f.eyeRatio ? [...f.eyeRatio] : undefined,
    lipRatio: f.lipRatio,
  };
}

export function disposeSourceKeypoints(s: SourceKeypoints): void {
  for (const v of Object.values(s.x_s_info)) (v as tf.Tensor).dispose();
  s.R_s.dispose();
  s.x_s.dispose();
}
