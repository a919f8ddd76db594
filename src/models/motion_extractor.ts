/**
 * Motion extractor M: a ConvNeXt-V2 tiny backbone whose pooled feature feeds
 * seven linear heads (canonical keypoints, scale, pose bins, translation,
 * expression). Outputs are the raw head values, as the reference returns them.
 * Checkpoint keys start with `detector.`.
 */
import * as tf from '@tensorflow/tfjs';
import { Conv2d, Linear, disposeAll } from '../layers/core.js';
import { ConvNeXtV2Block, LayerNorm, convNeXtV2BlockSpecs } from '../layers/convnext.js';
import type { ParamReader } from '../layers/params.js';
import type { ParamSpec } from '../layers/params.js';
import type { MotionExtractorNet, MotionOutput } from './types.js';

export interface MotionExtractorConfig {
  inChannels: number;
  /** Blocks per stage and channels per stage (4 stages). */
  depths: readonly number[];
  dims: readonly number[];
  numKp: number;
  numBins: number;
}

/** models.yaml: num_kp 21, backbone convnextv2_tiny (66 bins per angle). */
export const MOTION_EXTRACTOR_CONFIG: Readonly<MotionExtractorConfig> = {
  inChannels: 3,
  depths: [3, 3, 9, 3],
  dims: [96, 192, 384, 768],
  numKp: 21,
  numBins: 66,
};

const P = 'detector';

/** Heads in the checkpoint's order, with their output sizes. */
function heads(cfg: MotionExtractorConfig = MOTION_EXTRACTOR_CONFIG): [keyof MotionOutput, number][] {
  return [
    ['kp', 3 * cfg.numKp],
    ['scale', 1],
    ['pitch', cfg.numBins],
    ['yaw', cfg.numBins],
    ['roll', cfg.numBins],
    ['t', 3],
    ['exp', 3 * cfg.numKp],
  ];
}

/** Official keys and PyTorch shapes of M, in the checkpoint's order. */
export function motionExtractorSpecs(cfg: MotionExtractorConfig = MOTION_EXTRACTOR_CONFIG): ParamSpec[] {
  const { dims, depths } = cfg;
  const specs: ParamSpec[] = [];
  const vec = (key: string, n: number): void => void specs.push({ key, shape: [n] });
  // Stem: conv 4x4 / 4 then LayerNorm; downsamplers: LayerNorm then conv 2x2 / 2.
  specs.push({ key: `${P}.downsample_layers.0.0.weight`, shape: [dims[0], cfg.inChannels, 4, 4] });
  vec(`${P}.downsample_layers.0.0.bias`, dims[0]);
  vec(`${P}.downsample_layers.0.1.weight`, dims[0]);
  vec(`${P}.downsample_layers.0.1.bias`, dims[0]);
  for (let i = 1; i < 4; i++) {
    vec(`${P}.downsample_layers.${i}.0.weight`, dims[i - 1]);
    vec(`${P}.downsample_layers.${i}.0.bias`, dims[i - 1]);
    specs.push({ key: `${P}.downsample_layers.${i}.1.weight`, shape: [dims[i], dims[i - 1], 2, 2] });
    vec(`${P}.downsample_layers.${i}.1.bias`, dims[i]);
  }
  for (let i = 0; i < 4; i++) for (let j = 0; j < depths[i]; j++) specs.push(...convNeXtV2BlockSpecs(`${P}.stages.${i}.${j}`, dims[i]));
  const c = dims[3];
  vec(`${P}.norm.weight`, c);
  vec(`${P}.norm.bias`, c);
  for (const [name, n] of heads(cfg)) {
    specs.push({ key: `${P}.fc_${name}.weight`, shape: [n, c] });
    vec(`${P}.fc_${name}.bias`, n);
  }
  return specs;
}

/** One resolution stage: an optional LayerNorm, a patchifying conv, another optional LayerNorm, then blocks. */
interface Stage {
  preNorm?: LayerNorm;
  conv: Conv2d;
  postNorm?: LayerNorm;
  blocks: ConvNeXtV2Block[];
}

export class MotionExtractor implements MotionExtractorNet {
  private readonly stages: Stage[] = [];
  private readonly norm: LayerNorm;
  private readonly heads: [keyof MotionOutput, Linear][];

  constructor(p: ParamReader, cfg: MotionExtractorConfig = MOTION_EXTRACTOR_CONFIG) {
    const { dims, depths } = cfg;
    for (let i = 0; i < 4; i++) {
      const ds = `${P}.downsample_layers.${i}`;
      const stage: Stage =
        i === 0
          ? { conv: new Conv2d(p, `${ds}.0`, { stride: 4 }), postNorm: new LayerNorm(p, `${ds}.1`, 1e-6), blocks: [] }
          : { preNorm: new LayerNorm(p, `${ds}.0`, 1e-6), conv: new Conv2d(p, `${ds}.1`, { stride: 2 }), blocks: [] };
      for (let j = 0; j < depths[i]; j++) stage.blocks.push(new ConvNeXtV2Block(p, `${P}.stages.${i}.${j}`, dims[i]));
      this.stages.push(stage);
    }
    this.norm = new LayerNorm(p, `${P}.norm`, 1e-6);
    this.heads = heads(cfg).map(([name]) => [name, new Linear(p, `${P}.fc_${name}`)]);
  }

  /** The pooled, normalised backbone feature [N, 768]. */
  features(image: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => {
      let x = image;
      for (const s of this.stages) {
        if (s.preNorm) x = s.preNorm.apply(x);
        x = s.conv.apply(x);
        if (s.postNorm) x = s.postNorm.apply(x);
        for (const b of s.blocks) x = b.apply(x);
      }
      return this.norm.apply(tf.mean(x, [1, 2])) as tf.Tensor2D;
    });
  }

  /** image NHWC [N, 256, 256, 3] in 0..1 → raw head outputs. */
  apply(image: tf.Tensor4D): MotionOutput {
    const feat = this.features(image);
    const out = {} as MotionOutput;
    for (const [name, fc] of this.heads) out[name] = fc.apply(feat) as tf.Tensor2D;
    feat.dispose();
    return out;
  }

  dispose(): void {
    for (const s of this.stages) disposeAll([s.preNorm, s.conv, s.postNorm, s.blocks]);
    this.norm.dispose();
    for (const [, fc] of this.heads) fc.dispose();
  }
}
