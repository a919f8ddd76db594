/**
 * Camera math of LivePortrait: head-pose bins to degrees, the Euler rotation
 * matrix, and the implicit keypoint transform of Eqn. 2,
 * x = s · (x_c R + δ) + t (t without its z part).
 */
import { readTogether } from '../layers/read.js';
import * as tf from '@tensorflow/tfjs';
import type { MotionOutput } from '../models/types.js';

/** Motion extractor output refined: degrees and keypoints as [N, 21, 3]. */
export interface KpInfo {
  /** Degrees [N, 1]. */
  pitch: tf.Tensor2D;
  yaw: tf.Tensor2D;
  roll: tf.Tensor2D;
  /** Translation [N, 3]. */
  t: tf.Tensor2D;
  /** Expression deformation δ [N, 21, 3]. */
  exp: tf.Tensor3D;
  /** Scale [N, 1]. */
  scale: tf.Tensor2D;
  /** Canonical keypoints x_c [N, 21, 3]. */
  kp: tf.Tensor3D;
}

export const NUM_BINS = 66;

/**
 * Head-pose bin logits [N, 66] → degrees [N]: the softmax expectation of
 * the bin index, × 3 − 97.5. Evaluated in float64 on the host (66 values a
 * row) and rounded once: a float32 sum of 66 terms near 50 would be a few
 * ulps (~3e-5°) off, as the reference's own float32 result is.
 */
export function headposeBinsToDegreeHost(bins: ArrayLike<number>, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    let m = -Infinity;
    for (let i = 0; i < NUM_BINS; i++) m = Math.max(m, bins[r * NUM_BINS + i]);
    let z = 0;
    let s = 0;
    for (let i = 0; i < NUM_BINS; i++) {
      const e = Math.exp(bins[r * NUM_BINS + i] - m);
      z += e;
      s += e * i;
    }
    out[r] = (s / z) * 3 - 97.5;
  }
  return out;
}

function checkBins(pred: tf.Tensor2D): void {
  if (pred.rank !== 2 || pred.shape[1] !== NUM_BINS) throw new Error(`head-pose bins must be [N, ${NUM_BINS}], got shape ${JSON.stringify(pred.shape)}`);
}

/** Reads the bins asynchronously (webgpu has no synchronous read in Node) and sums in float64 on the host. */
export async function headposeBinsToDegree(pred: tf.Tensor2D): Promise<tf.Tensor1D> {
  checkBins(pred);
  return tf.tensor1d(headposeBinsToDegreeHost(await pred.data(), pred.shape[0]));
}

function asColumn(x: tf.Tensor, name: string): tf.Tensor2D {
  if (x.rank === 1) return x.reshape([x.shape[0], 1]);
  if (x.rank === 2 && x.shape[1] === 1) return x as tf.Tensor2D;
  throw new Error(`${name} must be degrees [N] or [N, 1], got shape ${JSON.stringify(x.shape)}`);
}

/**
 * Rotation matrices [N, 3, 3] from pitch, yaw, roll in degrees ([N] or
 * [N, 1]): (Rz · Ry · Rx)ᵀ, the reference's convention, so that keypoints
 * (row vectors) rotate as x R.
 */
export function getRotationMatrix(pitch: tf.Tensor, yaw: tf.Tensor, roll: tf.Tensor): tf.Tensor3D {
  return tf.tidy(() => {
    // Same association as the reference: deg / 180 * π, in float32.
    const rad = (d: tf.Tensor, name: string) => tf.mul(tf.div(asColumn(d, name), 180), Math.PI);
    const x = rad(pitch, 'pitch');
    const y = rad(yaw, 'yaw');
    const z = rad(roll, 'roll');
    const n = x.shape[0];
    if (y.shape[0] !== n || z.shape[0] !== n) throw new Error('pitch, yaw and roll must have the same batch size');
    const one = tf.ones([n, 1]);
    const zero = tf.zeros([n, 1]);
    const mat = (entries: tf.Tensor[]) => tf.concat(entries, 1).reshape([n, 3, 3]) as tf.Tensor3D;
    const [cx, sx, cy, sy, cz, sz] = [tf.cos(x), tf.sin(x), tf.cos(y), tf.sin(y), tf.cos(z), tf.sin(z)];
    const rotX = mat([one, zero, zero, zero, cx, tf.neg(sx), zero, sx, cx]);
    const rotY = mat([cy, zero, sy, zero, one, zero, tf.neg(sy), zero, cy]);
    const rotZ = mat([cz, tf.neg(sz), zero, sz, cz, zero, zero, zero, one]);
    const rot = tf.matMul(tf.matMul(rotZ, rotY), rotX);
    return tf.transpose(rot, [0, 2, 1]) as tf.Tensor3D;
  });
}

/**
 * The reference's refinement of M's output (`get_kp_info`): head-pose bins
 * to degrees [N, 1], kp and exp reshaped to [N, 21, 3]. New tensors; the
 * input is left to the caller.
 */
export async function refineKpInfo(m: MotionOutput): Promise<KpInfo> {
  const n = m.kp.shape[0];
  for (const b of [m.pitch, m.yaw, m.roll]) checkBins(b);
  const [pitch, yaw, roll] = (await readTogether([m.pitch, m.yaw, m.roll])).map((b) => headposeBinsToDegreeHost(b, n));
  return tf.tidy(() => {
    const deg = (d: Float32Array) => tf.tensor2d(d, [n, 1]);
    return {
      pitch: deg(pitch),
      yaw: deg(yaw),
      roll: deg(roll),
      t: tf.clone(m.t),
      exp: m.exp.reshape([n, -1, 3]) as tf.Tensor3D,
      scale: tf.clone(m.scale),
      kp: m.kp.reshape([n, -1, 3]) as tf.Tensor3D,
    };
  });
}

/** The rotation R of refined keypoint info. */
export function kpInfoRotation(info: KpInfo): tf.Tensor3D {
  return getRotationMatrix(info.pitch, info.yaw, info.roll);
}

/**
 * Eqn. 2 with a given rotation: x = s · (x_c R + δ) + (tx, ty, 0).
 * kp, exp [N, K, 3]; R [N, 3, 3]; scale [N, 1]; t [N, 3].
 */
export function transformKeypointWith(kp: tf.Tensor3D, R: tf.Tensor3D, exp: tf.Tensor3D, scale: tf.Tensor, t: tf.Tensor): tf.Tensor3D {
  return tf.tidy(() => {
    const n = kp.shape[0];
    const x = tf.mul(tf.add(tf.matMul(kp, R), exp), scale.reshape([n, 1, 1]));
    const txy = tf.concat([tf.slice(t.reshape([n, 3]), [0, 0], [n, 2]), tf.zeros([n, 1])], 1).reshape([n, 1, 3]);
    return tf.add(x, txy) as tf.Tensor3D;
  });
}

/** `transform_keypoint` of the reference: x_s from refined keypoint info. */
export function transformKeypoint(info: KpInfo): tf.Tensor3D {
  return tf.tidy(() => transformKeypointWith(info.kp, kpInfoRotation(info), info.exp, info.scale, info.t));
}
