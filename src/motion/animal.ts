/**
 * Motion transfer of the reference's animal pipeline
 * (LivePortraitPipelineAnimal.execute): a human driving video (or template)
 * moves an animal's face. Unlike the human pipeline there is no choice of
 * relative/absolute motion, region, eye/lip retargeting or lip
 * normalisation. For driving motion frame i (R_d,i, δ_d,i, t_d,i) and the
 * source's canonical keypoints x_c,s and scale s_s:
 *
 *   x_d,i  = s_s · (x_c,s R_d,i + δ_d,i) + t_d,i        (t_z zeroed)
 *   m      = sqrt(vol hull(x_s)) / sqrt(vol hull(x_d,0))  (first driving frame)
 *   x_d,i ← x_s + (x_d,i − x_d,0) · m
 *   x_d,i ← stitching(x_s, x_d,i)                         (when stitching)
 *   x_d,i ← x_s + (x_d,i − x_s) · drivingMultiplier
 */
import * as tf from '@tensorflow/tfjs';
import type { StitchingRetargetingModule } from '../models/stitching_retargeting_module.js';
import type { MotionFrame } from '../formats/template.js';
import { NUM_KP } from '../models/types.js';
import type { SourceKeypoints } from './transfer.js';
import { motionMultiplier } from './transfer.js';

/** What the animal transfer takes of the options (the rest are ignored, as the reference does). */
export interface AnimalTransferOptions {
  /** flag_stitching (default true). */
  stitching: boolean;
  /** driving_multiplier (default 1). */
  drivingMultiplier: number;
}

/**
 * x_d,i = s_s · (x_c,s R_d,i + δ_d,i) + (t_x, t_y, 0): the driving frame's
 * rotation, expression and translation on the source's canonical keypoints
 * and scale [1, 21, 3].
 */
export function animalRawKeypoints(source: SourceKeypoints, frame: MotionFrame): tf.Tensor3D {
  return tf.tidy(() => {
    const s = source.x_s_info;
    const R = tf.tensor3d(Float32Array.from(frame.R), [1, 3, 3]);
    const exp = tf.tensor3d(Float32Array.from(frame.exp), [1, NUM_KP, 3]);
    const t = tf.tensor3d(Float32Array.from([frame.t[0], frame.t[1], 0]), [1, 1, 3]);
    return tf.add(tf.mul(s.scale.reshape([1, 1, 1]), tf.add(tf.matMul(s.kp, R), exp)), t) as tf.Tensor3D;
  });
}

/** The motion multiplier of the animal pipeline: sqrt(vol hull(x_s)) / sqrt(vol hull(x_d,0)). */
export async function animalMotionMultiplier(source: SourceKeypoints, first: MotionFrame): Promise<number> {
  const x_d0 = animalRawKeypoints(source, first);
  try {
    const [xs, d0] = await Promise.all([source.x_s.data(), x_d0.data()]);
    return motionMultiplier(xs, d0);
  } finally {
    x_d0.dispose();
  }
}

/**
 * The final driving keypoints x_d [1, 21, 3] of one frame in animal mode.
 * `first` is the first driving motion frame; `multiplier` is the motion
 * multiplier of this source and first frame (animalMotionMultiplier).
 */
export function animalDrivingKeypoints(
  S: StitchingRetargetingModule,
  source: SourceKeypoints,
  frame: MotionFrame,
  first: MotionFrame,
  opts: AnimalTransferOptions,
  multiplier: number,
): tf.Tensor3D {
  const mm = multiplier;
  return tf.tidy(() => {
    const x_s = source.x_s;
    const x_d0 = animalRawKeypoints(source, first);
    const x_di = animalRawKeypoints(source, frame);
    let x_d = tf.add(tf.mul(tf.sub(x_di, x_d0), mm), x_s) as tf.Tensor3D;
    if (opts.stitching) x_d = S.stitching(x_s, x_d);
    return tf.add(x_s, tf.mul(tf.sub(x_d, x_s), opts.drivingMultiplier)) as tf.Tensor3D;
  });
}
