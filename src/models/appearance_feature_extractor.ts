/**
 * Appearance feature extractor F: source image → 3-D appearance feature
 * volume f_s. 2-D encoder (SameBlock2d, DownBlock2d ×2, 1x1 conv to 512
 * channels), reshape of the 512 channels into 32 channels × 16 depth slices,
 * then six 3-D residual blocks.
 */
import * as tf from '@tensorflow/tfjs';
import { DownBlock2d, ResBlock3d, SameBlock2d } from '../layers/blocks.js';
import { Conv2d, disposeAll } from '../layers/core.js';
import type { ParamReader } from '../layers/params.js';
import type { ParamSpec } from '../layers/params.js';
import type { AppearanceFeatureExtractorNet } from './types.js';

export interface AppearanceFeatureExtractorConfig {
  imageChannel: number;
  blockExpansion: number;
  numDownBlocks: number;
  maxFeatures: number;
  reshapeChannel: number;
  reshapeDepth: number;
  numResblocks: number;
}

/** models.yaml: appearance_feature_extractor_params. */
export const APPEARANCE_FEATURE_EXTRACTOR_CONFIG: Readonly<AppearanceFeatureExtractorConfig> = {
  imageChannel: 3,
  blockExpansion: 64,
  numDownBlocks: 2,
  maxFeatures: 512,
  reshapeChannel: 32,
  reshapeDepth: 16,
  numResblocks: 6,
};

type Config = Readonly<AppearanceFeatureExtractorConfig>;

/** Channels in/out of down block i. */
function downFeatures(cfg: Config, i: number): [number, number] {
  return [Math.min(cfg.maxFeatures, cfg.blockExpansion * 2 ** i), Math.min(cfg.maxFeatures, cfg.blockExpansion * 2 ** (i + 1))];
}

function convSpecs(prefix: string, shape: number[]): ParamSpec[] {
  return [
    { key: `${prefix}.weight`, shape },
    { key: `${prefix}.bias`, shape: [shape[0]] },
  ];
}

/** BatchNorm parameters (num_batches_tracked omitted, as in the manifest). */
function bnSpecs(prefix: string, c: number): ParamSpec[] {
  return ['weight', 'bias', 'running_mean', 'running_var'].map((s) => ({ key: `${prefix}.${s}`, shape: [c] }));
}

/** Official keys and PyTorch shapes of F, in the checkpoint's order. */
export function appearanceFeatureExtractorSpecs(cfg: Config = APPEARANCE_FEATURE_EXTRACTOR_CONFIG): ParamSpec[] {
  const be = cfg.blockExpansion;
  const specs: ParamSpec[] = [...convSpecs('first.conv', [be, cfg.imageChannel, 3, 3]), ...bnSpecs('first.norm', be)];
  let out = be;
  for (let i = 0; i < cfg.numDownBlocks; i++) {
    const [fin, fout] = downFeatures(cfg, i);
    specs.push(...convSpecs(`down_blocks.${i}.conv`, [fout, fin, 3, 3]), ...bnSpecs(`down_blocks.${i}.norm`, fout));
    out = fout;
  }
  specs.push(...convSpecs('second', [cfg.maxFeatures, out, 1, 1]));
  const c = cfg.reshapeChannel;
  for (let i = 0; i < cfg.numResblocks; i++) {
    const r = `resblocks_3d.3dr${i}`;
    specs.push(...convSpecs(`${r}.conv1`, [c, c, 3, 3, 3]), ...convSpecs(`${r}.conv2`, [c, c, 3, 3, 3]));
    specs.push(...bnSpecs(`${r}.norm1`, c), ...bnSpecs(`${r}.norm2`, c));
  }
  return specs;
}

export class AppearanceFeatureExtractor implements AppearanceFeatureExtractorNet {
  private readonly first: SameBlock2d;
  private readonly downBlocks: DownBlock2d[] = [];
  private readonly second: Conv2d;
  private readonly resblocks: ResBlock3d[] = [];
  private readonly cfg: Config;

  constructor(p: ParamReader, cfg: Config = APPEARANCE_FEATURE_EXTRACTOR_CONFIG) {
    this.cfg = cfg;
    this.first = new SameBlock2d(p, 'first', { padding: 1 });
    for (let i = 0; i < cfg.numDownBlocks; i++) this.downBlocks.push(new DownBlock2d(p, `down_blocks.${i}`, { padding: 1 }));
    this.second = new Conv2d(p, 'second');
    for (let i = 0; i < cfg.numResblocks; i++) this.resblocks.push(new ResBlock3d(p, `resblocks_3d.3dr${i}`, { padding: 1 }));
  }

  /** image NHWC [N, 256, 256, 3] in 0..1 → f_s NDHWC [N, 16, 64, 64, 32]. */
  apply(image: tf.Tensor4D): tf.Tensor5D {
    return tf.tidy(() => {
      let x = this.first.apply(image);
      for (const b of this.downBlocks) x = b.apply(x);
      x = this.second.apply(x); // [N, 64, 64, 512]
      // PyTorch views the 512 channels as (32, 16): channel = c * 16 + d.
      const [n, h, w] = x.shape;
      const { reshapeChannel: c, reshapeDepth: d } = this.cfg;
      let f_s = tf.transpose(x.reshape([n, h, w, c, d]), [0, 4, 1, 2, 3]) as tf.Tensor5D;
      for (const r of this.resblocks) f_s = r.apply(f_s);
      return f_s;
    });
  }

  dispose(): void {
    disposeAll([this.first, this.downBlocks, this.second, this.resblocks]);
  }
}
