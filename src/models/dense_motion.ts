/**
 * The dense motion network inside the warping module W: from the source
 * feature volume and the source / driving keypoints it predicts a dense
 * deformation field (a softmax mixture of per-keypoint sparse motions) and an
 * occlusion map. Channel-last (NDHWC); PyTorch's channel orders are kept
 * where they matter (the hourglass input, the occlusion conv's C*D fold).
 */
import * as tf from '@tensorflow/tfjs';
import { DownBlock3d, UpBlock3d } from '../layers/blocks.js';
import { BatchNorm, Conv2d, Conv3d, type Disposable, disposeAll } from '../layers/core.js';
import { gridSample3d } from '../layers/grid_sample3d.js';
import { kp2gaussian, makeCoordinateGrid } from '../layers/heatmap.js';
import type { ParamReader } from '../layers/params.js';
import type { ParamSpec } from '../layers/params.js';
import { type TapFn, scopedTap } from '../layers/taps.js';

export interface DenseMotionConfig {
  numKp: number;
  /** Channels of the feature volume (reshape_channel of W). */
  featureChannel: number;
  blockExpansion: number;
  maxFeatures: number;
  numBlocks: number;
  reshapeDepth: number;
  compress: number;
}

/** models.yaml: warping_module_params.dense_motion_params (+ num_kp, reshape_channel). */
export const DENSE_MOTION_CONFIG: DenseMotionConfig = {
  numKp: 21,
  featureChannel: 32,
  blockExpansion: 32,
  maxFeatures: 1024,
  numBlocks: 5,
  reshapeDepth: 16,
  compress: 4,
};

/** Variance of the keypoint Gaussians. */
const KP_VARIANCE = 0.01;

// ---------------------------------------------------------------- param specs

export function convSpecs(prefix: string, out: number, inp: number, kernel: number[], bias = true): ParamSpec[] {
  const specs = [{ key: `${prefix}.weight`, shape: [out, inp, ...kernel] }];
  if (bias) specs.push({ key: `${prefix}.bias`, shape: [out] });
  return specs;
}

export function batchNormSpecs(prefix: string, c: number): ParamSpec[] {
  return ['weight', 'bias', 'running_mean', 'running_var'].map((k) => ({ key: `${prefix}.${k}`, shape: [c] }));
}

/** conv 3x3x3 + BatchNorm3d, as in DownBlock3d / UpBlock3d. */
function convNormSpecs(prefix: string, out: number, inp: number): ParamSpec[] {
  return [...convSpecs(`${prefix}.conv`, out, inp, [3, 3, 3]), ...batchNormSpecs(`${prefix}.norm`, out)];
}

/** Channel widths of the hourglass (the reference's Encoder / Decoder formulas). */
export function hourglassChannels(blockExpansion: number, inFeatures: number, numBlocks: number, maxFeatures: number) {
  const width = (i: number) => Math.min(maxFeatures, blockExpansion * 2 ** i);
  const down = Array.from({ length: numBlocks }, (_, i) => ({ inp: i === 0 ? inFeatures : width(i), out: width(i + 1) }));
  const up = Array.from({ length: numBlocks }, (_, j) => {
    const i = numBlocks - 1 - j;
    return { inp: (i === numBlocks - 1 ? 1 : 2) * width(i + 1), out: width(i) };
  });
  return { down, up, outFilters: blockExpansion + inFeatures };
}

function hourglassInFeatures(cfg: DenseMotionConfig): number {
  return (cfg.numKp + 1) * (cfg.compress + 1);
}

/** Parameter specs of the dense motion network under `prefix`, in checkpoint order. */
export function denseMotionSpecs(prefix = 'dense_motion_network', cfg: DenseMotionConfig = DENSE_MOTION_CONFIG): ParamSpec[] {
  const ch = hourglassChannels(cfg.blockExpansion, hourglassInFeatures(cfg), cfg.numBlocks, cfg.maxFeatures);
  const hg = `${prefix}.hourglass`;
  return [
    ...ch.down.flatMap((b, i) => convNormSpecs(`${hg}.encoder.down_blocks.${i}`, b.out, b.inp)),
    ...ch.up.flatMap((b, i) => convNormSpecs(`${hg}.decoder.up_blocks.${i}`, b.out, b.inp)),
    ...convNormSpecs(`${hg}.decoder`, ch.outFilters, ch.outFilters),
    ...convSpecs(`${prefix}.mask`, cfg.numKp + 1, ch.outFilters, [7, 7, 7]),
    ...convSpecs(`${prefix}.compress`, cfg.compress, cfg.featureChannel, [1, 1, 1]),
    ...batchNormSpecs(`${prefix}.norm`, cfg.compress),
    ...convSpecs(`${prefix}.occlusion`, 1, ch.outFilters * cfg.reshapeDepth, [7, 7]),
  ];
}

// ------------------------------------------------------------------ hourglass

/** The 3-D hourglass (U-Net): DownBlock3d encoder, UpBlock3d decoder with skip concatenation, conv + BN + ReLU. */
export class Hourglass3d implements Disposable {
  readonly down: DownBlock3d[];
  readonly up: UpBlock3d[];
  /** The decoder's final conv with its batch norm folded in. */
  readonly conv: Conv3d;

  constructor(p: ParamReader, prefix: string, numBlocks: number) {
    this.down = Array.from({ length: numBlocks }, (_, i) => new DownBlock3d(p, `${prefix}.encoder.down_blocks.${i}`));
    this.up = Array.from({ length: numBlocks }, (_, i) => new UpBlock3d(p, `${prefix}.decoder.up_blocks.${i}`));
    this.conv = new Conv3d(p, `${prefix}.decoder.conv`, { padding: 1, norm: new BatchNorm(p, `${prefix}.decoder.norm`) });
  }

  /**
   * x [N, D, H, W, C] → [N, D, H, W, out_filters]. Taps (paths inside the
   * hourglass): `encoder.down_blocks.<i>`, `encoder/<i>` (the encoder's list:
   * its input, then each level), `decoder.up_blocks.<i>` (before the skip
   * concatenation), `decoder` and '' (the output).
   */
  apply(x: tf.Tensor5D, tap?: TapFn): tf.Tensor5D {
    return tf.tidy(() => {
      const skips: tf.Tensor5D[] = [x];
      this.down.forEach((block, i) => {
        skips.push(block.apply(skips[skips.length - 1]));
        tap?.(`encoder.down_blocks.${i}`, skips[i + 1]);
      });
      if (tap) skips.forEach((s, i) => tap(`encoder/${i}`, s));
      // Each level is freed once the decoder has used it (the input x is the caller's).
      const free = (t: tf.Tensor) => t !== x && t.dispose();
      let out = skips.pop() as tf.Tensor5D;
      this.up.forEach((block, i) => {
        const up = block.apply(out);
        free(out);
        tap?.(`decoder.up_blocks.${i}`, up);
        const skip = skips.pop() as tf.Tensor5D;
        out = tf.concat([up, skip], 4);
        tf.dispose(up);
        free(skip);
      });
      const result = this.conv.apply(out, 'relu');
      free(out);
      tap?.('decoder', result);
      tap?.('', result);
      return result;
    });
  }

  dispose(): void {
    disposeAll([this.down, this.up, this.conv]);
  }
}

// --------------------------------------------------------------- the network

export interface DenseMotionOutput {
  /** Deformation grid [N, D, H, W, 3] (x, y, z in [-1, 1]). */
  deformation: tf.Tensor5D;
  /** Occlusion map [N, H, W, 1]. */
  occlusionMap: tf.Tensor4D;
}

export interface DenseMotionTaps extends DenseMotionOutput {
  /**
   * The output of the 1x1x1 `compress` conv, before norm and ReLU
   * [N, D, H, W, compress] (what the parity fixture's compress_out holds).
   */
  compressOut: tf.Tensor5D;
  /** Hourglass output [N, D, H, W, out_filters]. */
  hourglassOut: tf.Tensor5D;
  /** Softmax mask over background + keypoints [N, D, H, W, K + 1]. */
  mask: tf.Tensor5D;
}

/**
 * Sparse motions [N, D, H, W, K + 1, 3]: for keypoint k, identity - kp_driving[k]
 * + kp_source[k] (where each driving point comes from in the source); entry 0
 * is the background, the identity grid itself.
 */
export function sparseMotions(identity: tf.Tensor4D, kpSource: tf.Tensor3D, kpDriving: tf.Tensor3D): tf.Tensor {
  return tf.tidy(() => {
    const [d, h, w] = identity.shape;
    const [n, k] = kpSource.shape;
    const grid = identity.reshape([1, d, h, w, 1, 3]);
    const toSource = tf.add(tf.sub(grid, kpDriving.reshape([n, 1, 1, 1, k, 3])), kpSource.reshape([n, 1, 1, 1, k, 3]));
    const background = tf.broadcastTo(grid, [n, d, h, w, 1, 3]);
    return tf.concat([background, toSource], 4) as tf.Tensor;
  });
}

/**
 * Heatmap channels [N, D, H, W, K + 1]: Gaussian(kp_driving) - Gaussian(kp_source)
 * per keypoint, after a zero background channel.
 */
export function heatmapRepresentation(size: readonly [number, number, number], kpSource: tf.Tensor3D, kpDriving: tf.Tensor3D): tf.Tensor5D {
  return tf.tidy(() => {
    const heat = tf.sub(kp2gaussian(kpDriving, size, KP_VARIANCE), kp2gaussian(kpSource, size, KP_VARIANCE));
    const [n, d, h, w] = heat.shape;
    return tf.concat([tf.zeros([n, d, h, w, 1]), heat], 4) as tf.Tensor5D;
  });
}

export class DenseMotionNetwork implements Disposable {
  readonly cfg: DenseMotionConfig;
  readonly hourglass: Hourglass3d;
  readonly mask: Conv3d;
  readonly compress: Conv3d;
  readonly norm: BatchNorm;
  readonly occlusion: Conv2d;

  constructor(p: ParamReader, prefix = 'dense_motion_network', cfg: DenseMotionConfig = DENSE_MOTION_CONFIG) {
    this.cfg = cfg;
    this.hourglass = new Hourglass3d(p, `${prefix}.hourglass`, cfg.numBlocks);
    this.mask = new Conv3d(p, `${prefix}.mask`, { padding: 3 });
    this.compress = new Conv3d(p, `${prefix}.compress`);
    this.norm = new BatchNorm(p, `${prefix}.norm`);
    this.occlusion = new Conv2d(p, `${prefix}.occlusion`, { padding: 3 });
  }

  /**
   * feature [N, D, H, W, C] (f_s), kp [N, K, 3] → deformation, occlusion map
   * and intermediate tensors. `tap` is offered (paths inside this network):
   * `compress`, `norm`, `hourglass...` (see Hourglass3d.apply), `mask` (the
   * conv, before softmax), `occlusion` (before sigmoid), and '/mask',
   * '/deformation', '/occlusion_map' (the reference's output dict).
   */
  applyWithTaps(feature: tf.Tensor5D, kpSource: tf.Tensor3D, kpDriving: tf.Tensor3D, tap?: TapFn): DenseMotionTaps {
    return tf.tidy(() => {
      const [n, d, h, w] = feature.shape;
      const identity = makeCoordinateGrid(d, h, w);
      const k1 = this.cfg.numKp + 1;
      // 1. The compressed feature warped by each sparse motion, and 2. the hourglass input, per keypoint
      // [heatmap, c deformed channels] as PyTorch's view(bs, -1, d, h, w); what only leads there is freed here.
      const { compressOut, sparse, input } = tf.tidy(() => {
        const compressOut = this.compress.apply(feature);
        tap?.('compress', compressOut);
        const normed = this.norm.apply(compressOut);
        tap?.('norm', normed);
        const compressed = tf.relu(normed);
        const c = compressed.shape[4];
        const sparse = sparseMotions(identity, kpSource, kpDriving); // [N, D, H, W, K+1, 3]
        const deformed = gridSample3d(compressed, sparse.reshape([n, d, h, w * k1, 3]) as tf.Tensor5D).reshape([n, d, h, w, k1, c]);
        const heat = heatmapRepresentation([d, h, w], kpSource, kpDriving).reshape([n, d, h, w, k1, 1]);
        const input = tf.concat([heat, deformed], 5).reshape([n, d, h, w, k1 * (c + 1)]) as tf.Tensor5D;
        return { compressOut, sparse, input };
      });
      const hourglassOut = this.hourglass.apply(input, scopedTap(tap, 'hourglass'));
      input.dispose();

      // 3. Softmax mask over the K+1 motions; the deformation is their mixture.
      const maskLogits = this.mask.apply(hourglassOut);
      tap?.('mask', maskLogits);
      const mask = tf.softmax(maskLogits, -1) as tf.Tensor5D;
      maskLogits.dispose();
      const deformation = tf.tidy(() => tf.sum(tf.mul(mask.reshape([n, d, h, w, k1, 1]), sparse), 4) as tf.Tensor5D);
      sparse.dispose();

      // 4. Occlusion from the hourglass output folded to 2-D, channel index c * D + d as in view(bs, -1, h, w).
      const ch = hourglassOut.shape[4];
      const folded = tf.transpose(hourglassOut, [0, 2, 3, 4, 1]).reshape([n, h, w, ch * d]) as tf.Tensor4D;
      const occlusionLogits = this.occlusion.apply(folded);
      folded.dispose();
      tap?.('occlusion', occlusionLogits);
      const occlusionMap = tf.sigmoid(occlusionLogits);
      occlusionLogits.dispose();
      tap?.('/mask', mask);
      tap?.('/deformation', deformation, 'torch');
      tap?.('/occlusion_map', occlusionMap);

      return { deformation, occlusionMap, compressOut, hourglassOut, mask };
    });
  }

  apply(feature: tf.Tensor5D, kpSource: tf.Tensor3D, kpDriving: tf.Tensor3D): DenseMotionOutput {
    const { deformation, occlusionMap, compressOut, hourglassOut, mask } = this.applyWithTaps(feature, kpSource, kpDriving);
    tf.dispose([compressOut, hourglassOut, mask]);
    return { deformation, occlusionMap };
  }

  dispose(): void {
    disposeAll([this.hourglass, this.mask, this.compress, this.norm, this.occlusion]);
  }
}
