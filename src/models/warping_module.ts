/**
 * W, the warping module: the dense motion network turns the source and driving
 * keypoints into a deformation of the source feature volume f_s; f_s is
 * warped by it, folded to 2-D (C * D channels), refined by `third` and
 * `fourth`, and multiplied by the occlusion map.
 */
import * as tf from '@tensorflow/tfjs';
import { SameBlock2d } from '../layers/blocks.js';
import { Conv2d } from '../layers/core.js';
import { gridSample3d } from '../layers/grid_sample3d.js';
import type { ParamReader } from '../layers/params.js';
import type { ParamSpec } from '../layers/params.js';
import { type TapFn, scopedTap } from '../layers/taps.js';
import { DENSE_MOTION_CONFIG, DenseMotionNetwork, batchNormSpecs, convSpecs, denseMotionSpecs } from './dense_motion.js';
import type { WarpingModuleNet, WarpingOutput } from './types.js';

/** models.yaml: warping_module_params. */
export const WARPING_MODULE_CONFIG = {
  numKp: 21,
  blockExpansion: 64,
  maxFeatures: 512,
  numDownBlocks: 2,
  reshapeChannel: 32,
  dense: DENSE_MOTION_CONFIG,
};

/** Official keys and PyTorch shapes of W, in checkpoint order. */
export function warpingModuleSpecs(): ParamSpec[] {
  const cfg = WARPING_MODULE_CONFIG;
  const out = cfg.blockExpansion * 2 ** cfg.numDownBlocks;
  return [
    ...denseMotionSpecs('dense_motion_network', { ...cfg.dense, numKp: cfg.numKp, featureChannel: cfg.reshapeChannel }),
    ...convSpecs('third.conv', out, cfg.maxFeatures, [3, 3]),
    ...batchNormSpecs('third.norm', out),
    ...convSpecs('fourth', out, out, [1, 1]),
  ];
}

/** W's outputs plus the dense motion network's intermediate tensors, for debugging and parity tests. */
export interface WarpingTaps extends WarpingOutput {
  /** The `compress` conv's output, before norm and ReLU [N, D, H, W, 4]. */
  compressOut: tf.Tensor5D;
  /** The hourglass output [N, D, H, W, 142]. */
  hourglassOut: tf.Tensor5D;
}

export class WarpingModule implements WarpingModuleNet {
  readonly denseMotion: DenseMotionNetwork;
  readonly third: SameBlock2d;
  readonly fourth: Conv2d;

  constructor(p: ParamReader) {
    const cfg = WARPING_MODULE_CONFIG;
    this.denseMotion = new DenseMotionNetwork(p, 'dense_motion_network', { ...cfg.dense, numKp: cfg.numKp, featureChannel: cfg.reshapeChannel });
    this.third = new SameBlock2d(p, 'third', { padding: 1, lrelu: true });
    this.fourth = new Conv2d(p, 'fourth');
  }

  /**
   * f_s [N, D, H, W, C] with the keypoints x_s, x_d [N, K, 3] → warped
   * feature, occlusion, deformation and taps. `tap` is offered the
   * reference's submodule outputs by path: `dense_motion_network[...]` (see
   * DenseMotionNetwork.applyWithTaps), `third`, `fourth`, and '/out',
   * '/occlusion_map', '/deformation' (W's output dict).
   */
  applyWithTaps(feature3d: tf.Tensor5D, kpSource: tf.Tensor3D, kpDriving: tf.Tensor3D, tap?: TapFn): WarpingTaps {
    return tf.tidy(() => {
      const dense = this.denseMotion.applyWithTaps(feature3d, kpSource, kpDriving, scopedTap(tap, 'dense_motion_network'));
      const { deformation, occlusionMap } = dense;
      const warped = gridSample3d(feature3d, deformation);
      // PyTorch's view(bs, c * d, h, w): channel index c * D + d.
      const [n, d, h, w, c] = warped.shape;
      const folded = tf.transpose(warped, [0, 2, 3, 4, 1]).reshape([n, h, w, c * d]) as tf.Tensor4D;
      const third = this.third.apply(folded);
      tap?.('third', third);
      const refined = this.fourth.apply(third);
      tap?.('fourth', refined);
      const out = tf.mul(refined, occlusionMap) as tf.Tensor4D;
      tap?.('/occlusion_map', occlusionMap);
      tap?.('/deformation', deformation, 'torch');
      tap?.('/out', out);
      return { out, occlusionMap, deformation, compressOut: dense.compressOut, hourglassOut: dense.hourglassOut };
    });
  }

  apply(feature3d: tf.Tensor5D, kpSource: tf.Tensor3D, kpDriving: tf.Tensor3D): WarpingOutput {
    const { out, occlusionMap, deformation, compressOut, hourglassOut } = this.applyWithTaps(feature3d, kpSource, kpDriving);
    tf.dispose([compressOut, hourglassOut]);
    return { out, occlusionMap, deformation };
  }

  dispose(): void {
    this.denseMotion.dispose();
    this.third.dispose();
    this.fourth.dispose();
  }
}
