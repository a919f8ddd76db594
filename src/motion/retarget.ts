/**
 * The keypoint math of the reference's retargeting (its gradio app): a
 * single image's edit (pose, sliders, eye and lip openness, stitching) and
 * the video retargeting targets (lips to one opening, or silent lips).
 */
import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import type { MotionFrame } from '../formats/template.js';
import type { StitchingRetargetingModule } from '../models/stitching_retargeting_module.js';
import { NUM_KP } from '../models/types.js';
import { getRotationMatrix } from './camera.js';
import { type RetargetEdit, applyExpressionEdits } from './edits.js';
import { kalmanSmooth } from './kalman.js';
import { type SourceKeypoints, combinedEyeRatio, combinedLipRatio } from './transfer.js';

/** Keypoints whose expression a silenced frame keeps: the eyes (the reference's [11, 13, 15, 16, 18]). */
export const SILENT_KEEP_KP = [11, 13, 15, 16, 18];

/**
 * The driving keypoints of a single-image edit, as the reference's gradio
 * retargeting: pose added to the source's, expression sliders, eye/lip open
 * ratios through R_eyes / R_lip, then stitching. As there, t keeps its z
 * component here: x_d = movZ · s · (x_c R_d + δ') + t.
 */
export async function retargetKeypoints(S: StitchingRetargetingModule, source: SourceKeypoints, edit: RetargetEdit = {}): Promise<tf.Tensor3D> {
  const expHost = applyExpressionEdits((await source.x_s_info.exp.data()) as Float32Array, edit);
  return tf.tidy(() => {
    const s = source.x_s_info;
    const add = (deg: tf.Tensor2D, v?: number) => (v ? tf.add(deg, v) : deg);
    const R_d = getRotationMatrix(add(s.pitch, edit.pitch), add(s.yaw, edit.yaw), add(s.roll, edit.roll));
    const R_new = tf.matMul(tf.matMul(R_d, source.R_s, false, true), source.R_s);
    const delta = tf.tensor3d(expHost, [1, NUM_KP, 3]);
    const movZ = edit.movZ ?? 1;
    let x_d = tf.add(tf.mul(tf.mul(s.scale.reshape([1, 1, 1]), movZ), tf.add(tf.matMul(s.kp, R_new), delta)), s.t.reshape([1, 1, 3])) as tf.Tensor3D;
    if (edit.eyeRatio !== undefined) x_d = tf.add(x_d, S.retargetEye(source.x_s, combinedEyeRatio(source.eyeRatio, edit.eyeRatio))) as tf.Tensor3D;
    if (edit.lipRatio !== undefined) x_d = tf.add(x_d, S.retargetLip(source.x_s, combinedLipRatio(source.lipRatio, edit.lipRatio))) as tf.Tensor3D;
    if (edit.stitching ?? true) x_d = S.stitching(source.x_s, x_d);
    return x_d;
  });
}

/**
 * Silent lips (the reference's prepare_video_lip_silence): each frame's
 * expression replaced by the neutral-lip expression but for the eye
 * keypoints, x_d = s·(x_c R + δ) + t, on host arrays.
 */
export function silentLipTargets(frames: MotionFrame[], lipArray: ArrayLike<number>): Float32Array[] {
  return frames.map((f, i) => {
    if (!f.kp) throw new InputError(`source frame ${i}: no canonical keypoints`);
    const delta = Float32Array.from(lipArray);
    for (const k of SILENT_KEEP_KP) for (let c = 0; c < 3; c++) delta[k * 3 + c] = f.exp[k * 3 + c];
    const x = new Float32Array(NUM_KP * 3);
    for (let j = 0; j < NUM_KP; j++)
      for (let c = 0; c < 3; c++) {
        let v = delta[j * 3 + c];
        for (let r = 0; r < 3; r++) v += f.kp[j * 3 + r] * f.R[r * 3 + c];
        x[j * 3 + c] = f.scale * v + f.t[c];
      }
    return x;
  });
}

/**
 * Lips to one opening (the reference's execute_video_retargeting): R_lip on
 * each frame's keypoints with [its lip ratio, lipRatio], the deltas
 * Kalman-smoothed over the video, x_d = x_s + δ.
 */
export async function lipRetargetTargets(
  S: StitchingRetargetingModule,
  frames: MotionFrame[],
  lipRatio: number,
  smoothing: { observationVariance?: number; processVariance?: number },
): Promise<Float32Array[]> {
  const deltas: Float32Array[] = [];
  for (const [i, f] of frames.entries()) {
    if (f.lipRatio === undefined) throw new InputError(`source frame ${i}: lip retargeting needs the frame's lip-open ratio (from its face landmarks)`);
    const d = tf.tidy(() => S.retargetLip(tf.tensor3d(Float32Array.from(f.x_s!), [1, NUM_KP, 3]), combinedLipRatio(f.lipRatio, lipRatio)));
    try {
      deltas.push(Float32Array.from(await d.data()));
    } finally {
      d.dispose();
    }
  }
  const smooth = kalmanSmooth(deltas, smoothing);
  return frames.map((f, i) => Float32Array.from(f.x_s!, (v, k) => v + smooth[i][k]));
}
