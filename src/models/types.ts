/**
 * The five networks' interfaces, channel-last. Every model class is built
 * from a ParamReader over its official state dict (`new X(reader)`), exports
 * its parameter list as `paramSpecs()` (official keys and PyTorch shapes,
 * which the synthetic weights are made from), and owns its tensors
 * (`dispose()`).
 */
import type * as tf from '@tensorflow/tfjs';

/** Implicit keypoints per face (models.yaml: num_kp). */
export const NUM_KP = 21;

/** Output of the motion extractor M, per image (PyTorch's names and shapes). */
export interface MotionOutput {
  /** Head-pose bin logits [N, 66]. */
  pitch: tf.Tensor2D;
  yaw: tf.Tensor2D;
  roll: tf.Tensor2D;
  /** Translation [N, 3]. */
  t: tf.Tensor2D;
  /** Expression deformation [N, 63] (21 keypoints × 3). */
  exp: tf.Tensor2D;
  /** Scale [N, 1]. */
  scale: tf.Tensor2D;
  /** Canonical keypoints [N, 63]. */
  kp: tf.Tensor2D;
}

/** F: image [N, 256, 256, 3] in 0..1 → feature volume f_s [N, 16, 64, 64, 32] (NDHWC). */
export interface AppearanceFeatureExtractorNet {
  apply(image: tf.Tensor4D): tf.Tensor5D;
  dispose(): void;
}

/** M: image [N, 256, 256, 3] in 0..1 → motion and keypoint parameters. */
export interface MotionExtractorNet {
  apply(image: tf.Tensor4D): MotionOutput;
  dispose(): void;
}

export interface WarpingOutput {
  /** Warped feature [N, 64, 64, 256] (NHWC), input of G. */
  out: tf.Tensor4D;
  /** Occlusion map [N, 64, 64, 1]. */
  occlusionMap: tf.Tensor4D;
  /** Deformation grid [N, 16, 64, 64, 3] (x, y, z in [-1, 1]). */
  deformation: tf.Tensor5D;
}

/** W: f_s, source and driving keypoints [N, 21, 3] → warped feature. */
export interface WarpingModuleNet {
  apply(feature3d: tf.Tensor5D, kpSource: tf.Tensor3D, kpDriving: tf.Tensor3D): WarpingOutput;
  dispose(): void;
}

/** G: warped feature [N, 64, 64, 256] → image [N, 512, 512, 3] in 0..1. */
export interface SpadeGeneratorNet {
  apply(feature: tf.Tensor4D): tf.Tensor4D;
  dispose(): void;
}
