/**
 * Smoothing of driving motion (beyond the reference, which smooths only
 * when the source is a video): every motion frame is split into
 *
 *   pose angles (pitch, yaw, roll, in radians, unwrapped over time),
 *   expression δ [63], translation t [3], scale s, canonical keypoints kp [63],
 *
 * each coordinate smoothed by the reference's Kalman model (kalman.ts: a
 * random walk with process variance q, observed with variance r =
 * `drivingSmooth`), and the rotation rebuilt from the smoothed angles, so
 * that it stays a rotation (never element by element). Angles are in
 * radians so that one variance means about what it means for the reference,
 * which smooths the rotation matrix's elements (those move by about the
 * angle in radians).
 *
 * Files: the two-pass smoother (`smoothMotion`, the whole motion known
 * first). Live input: `CausalMotionSmoother`, the same model's forward pass
 * only (no future frames), one frame at a time.
 */
import type { MotionFrame } from '../formats/template.js';
import { DEFAULT_PROCESS_VARIANCE, kalmanSmooth } from './kalman.js';

const DEG = Math.PI / 180;

/**
 * Pitch, yaw, roll in radians of a motion frame's rotation (the reference's
 * transposed matrix Rᵀ = (Rz Ry Rx)ᵀ, row-major): the exact inverse of
 * getRotationMatrix for |yaw| < 90°.
 */
export function rotationToAngles(R: ArrayLike<number>): [number, number, number] {
  // M = Rz Ry Rx = Rᵀ, so M[i][j] = R[j * 3 + i].
  const m20 = R[2];
  const m21 = R[5];
  const m22 = R[8];
  const m10 = R[1];
  const m00 = R[0];
  const yaw = Math.asin(Math.max(-1, Math.min(1, -m20)));
  return [Math.atan2(m21, m22), yaw, Math.atan2(m10, m00)];
}

/** The reference's transposed rotation matrix (row-major [9]) from pitch, yaw, roll in radians. */
export function anglesToRotation(pitch: number, yaw: number, roll: number): Float32Array {
  const [cx, sx, cy, sy, cz, sz] = [Math.cos(pitch), Math.sin(pitch), Math.cos(yaw), Math.sin(yaw), Math.cos(roll), Math.sin(roll)];
  // M = Rz Ry Rx.
  const M = [
    [cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx],
    [sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx],
    [-sy, cy * sx, cy * cx],
  ];
  const R = new Float32Array(9);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) R[j * 3 + i] = M[i][j];
  return R;
}

/** Degrees, for messages and measurements. */
export function rotationToDegrees(R: ArrayLike<number>): [number, number, number] {
  return rotationToAngles(R).map((a) => a / DEG) as [number, number, number];
}

function unwrap(prev: number, a: number): number {
  while (a - prev > Math.PI) a -= 2 * Math.PI;
  while (a - prev < -Math.PI) a += 2 * Math.PI;
  return a;
}

/** A frame as one vector: angles (3, radians), exp (63), t (3), scale (1), kp (63 where every frame has it). */
function toVectors(frames: readonly MotionFrame[]): { vecs: Float64Array[]; withKp: boolean } {
  const withKp = frames.every((f) => f.kp);
  let prev: number[] | undefined;
  const vecs = frames.map((f) => {
    let a = rotationToAngles(f.R);
    if (prev) a = a.map((x, k) => unwrap(prev![k], x)) as [number, number, number];
    prev = a;
    const v = new Float64Array(70 + (withKp ? 63 : 0));
    v.set(a, 0);
    v.set(f.exp, 3);
    v.set(f.t, 66);
    v[69] = f.scale;
    if (withKp) v.set(f.kp!, 70);
    return v;
  });
  return { vecs, withKp };
}

function fromVector(v: ArrayLike<number>, like: MotionFrame, withKp: boolean): MotionFrame {
  const R = anglesToRotation(v[0], v[1], v[2]);
  const exp = Float32Array.from(Array.prototype.slice.call(v, 3, 66) as number[]);
  const t = Float32Array.from(Array.prototype.slice.call(v, 66, 69) as number[]);
  const scale = Math.fround(v[69]);
  const out: MotionFrame = { ...like, R, exp, t, scale };
  if (withKp) {
    const kp = Float32Array.from(Array.prototype.slice.call(v, 70, 133) as number[]);
    out.kp = kp;
    // x_s = s · (kp R + δ) + t, as transformKeypoint.
    const x = new Float32Array(63);
    for (let n = 0; n < 21; n++)
      for (let j = 0; j < 3; j++) {
        let s = 0;
        for (let i = 0; i < 3; i++) s += kp[n * 3 + i] * R[i * 3 + j];
        x[n * 3 + j] = scale * (s + exp[n * 3 + j]) + (j < 2 ? t[j] : 0);
      }
    out.x_s = x;
  } else delete out.x_s;
  return out;
}

export interface MotionSmoothing {
  /** Observation variance (the option `drivingSmooth`; larger is smoother). */
  observationVariance: number;
  /** Process variance (default 1e-5, the reference's). */
  processVariance?: number;
}

/**
 * The whole motion of a driving file smoothed with the reference's Kalman
 * smoother (forward and backward passes): new frames (eye and lip ratios
 * kept as they are); 0 or 1 frames come back as they are.
 */
export function smoothMotion(frames: readonly MotionFrame[], s: MotionSmoothing): MotionFrame[] {
  if (frames.length < 2) return frames.slice();
  const { vecs, withKp } = toVectors(frames);
  const out = kalmanSmooth(vecs, { observationVariance: s.observationVariance, processVariance: s.processVariance ?? DEFAULT_PROCESS_VARIANCE });
  return out.map((v, i) => fromVector(v, frames[i], withKp));
}

/**
 * The causal filter for live input: the same Kalman model's forward pass,
 * one frame at a time (pykalman's filter; the smoother's first half). The
 * gain starts near 1 (the first frames are followed as they come) and
 * settles at K = P / (P + r), P = (q + √(q² + 4 q r)) / 2.
 */
export class CausalMotionSmoother {
  private mean?: Float64Array;
  private prevAngles?: number[];
  private p: number;
  private readonly q: number;
  private readonly r: number;

  constructor(s: MotionSmoothing) {
    this.r = s.observationVariance;
    this.q = s.processVariance ?? DEFAULT_PROCESS_VARIANCE;
    if (!(this.r > 0) || !(this.q > 0)) throw new Error(`drivingSmooth: variances must be > 0, got observation ${this.r}, process ${this.q}`);
    this.p = 1; // pykalman's initial covariance
  }

  /** The filtered motion of the next frame. */
  push(frame: MotionFrame): MotionFrame {
    const withKp = !!frame.kp && (this.mean === undefined || this.mean.length === 133);
    const { vecs } = toVectors([frame]);
    const y = vecs[0];
    if (this.prevAngles) for (let k = 0; k < 3; k++) y[k] = unwrap(this.prevAngles[k], y[k]);
    this.prevAngles = [y[0], y[1], y[2]];
    if (!this.mean || this.mean.length !== y.length) {
      this.mean = Float64Array.from(y);
      this.p = (1 * this.r) / (1 + this.r); // the first update from the initial state N(y0, 1)
      return fromVector(this.mean, frame, withKp);
    }
    const pp = this.p + this.q;
    const g = pp / (pp + this.r);
    this.p = (1 - g) * pp;
    for (let k = 0; k < y.length; k++) this.mean[k] += g * (y[k] - this.mean[k]);
    return fromVector(this.mean, frame, withKp);
  }
}
