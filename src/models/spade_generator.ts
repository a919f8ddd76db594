/**
 * G, the SPADE decoder: warped feature [N, 64, 64, 256] → image
 * [N, 512, 512, 3] in 0..1. Configuration of models.yaml
 * (spade_generator_params: upscale 2, block_expansion 64, max_features 512,
 * num_down_blocks 2): input channels 256, fc → 512, six SPADE resblocks at
 * 64², upsample ×2 → up_0 (512 → 256) at 128², upsample ×2 → up_1 (256 → 64)
 * at 256², then LeakyReLU 0.2, conv 64 → 12, PixelShuffle(2), sigmoid.
 * Every SPADE is conditioned on the generator's input feature itself.
 */
import * as tf from '@tensorflow/tfjs';
import { Conv2d } from '../layers/core.js';
import { pixelShuffle } from '../layers/pixel_shuffle.js';
import { SPADEResnetBlock, resizeNearest } from '../layers/spade.js';
import type { ParamReader } from '../layers/params.js';
import type { ParamSpec } from '../layers/params.js';
import { type TapFn, scopedTap } from '../layers/taps.js';
import { uniforms } from './synthetic.js';
import { type HostTensor, f32 } from '../formats/host_tensor.js';
import type { SpadeGeneratorNet } from './types.js';

export const SPADE_GENERATOR = 'spade_generator';

/** models.yaml: spade_generator_params (outChannels and middleBlocks are SPADEDecoder's defaults). */
export const SPADE_GENERATOR_CONFIG = {
  upscale: 2,
  blockExpansion: 64,
  maxFeatures: 512,
  numDownBlocks: 2,
  outChannels: 64,
  middleBlocks: 6,
} as const;

const { upscale: UPSCALE, blockExpansion: BLOCK_EXPANSION, maxFeatures: MAX_FEATURES, numDownBlocks: NUM_DOWN_BLOCKS, outChannels: OUT_CHANNELS, middleBlocks: MIDDLE_BLOCKS } = SPADE_GENERATOR_CONFIG;
/** Channels of the input feature (= label channels of every SPADE): 256. */
export const G_INPUT_CHANNELS = Math.min(MAX_FEATURES, BLOCK_EXPANSION * 2 ** NUM_DOWN_BLOCKS);

interface BlockDef {
  name: string;
  fin: number;
  fout: number;
  /** nn.Upsample(scale_factor=2), nearest, before the block. */
  upsample: boolean;
}

function blockDefs(): BlockDef[] {
  const c = G_INPUT_CHANNELS;
  return [
    ...Array.from({ length: MIDDLE_BLOCKS }, (_, i) => ({ name: `G_middle_${i}`, fin: 2 * c, fout: 2 * c, upsample: false })),
    { name: 'up_0', fin: 2 * c, fout: c, upsample: true },
    { name: 'up_1', fin: c, fout: OUT_CHANNELS, upsample: true },
  ];
}

/** G's parameters: official keys and PyTorch shapes, in checkpoint order. */
export function spadeGeneratorSpecs(): ParamSpec[] {
  const c = G_INPUT_CHANNELS;
  return [
    { key: 'fc.weight', shape: [2 * c, c, 3, 3] },
    { key: 'fc.bias', shape: [2 * c] },
    ...blockDefs().flatMap((b) => SPADEResnetBlock.specs(b.name, b.fin, b.fout, c)),
    { key: 'conv_img.0.weight', shape: [3 * UPSCALE * UPSCALE, OUT_CHANNELS, 3, 3] },
    { key: 'conv_img.0.bias', shape: [3 * UPSCALE * UPSCALE] },
  ];
}

/**
 * Deterministic spectral-norm vectors (weight_u, weight_v) for synthetic
 * weights, which the weight rule does not cover: uniforms of the rule mapped
 * to [-1, 1) and L2-normalised (as PyTorch initialises them: unit vectors).
 */
export function spadeGeneratorSyntheticExtras(seed: number): Map<string, HostTensor> {
  const extras = new Map<string, HostTensor>();
  for (const { key, shape } of spadeGeneratorSpecs()) {
    if (!key.endsWith('.weight_u') && !key.endsWith('.weight_v')) continue;
    const u = uniforms(`${SPADE_GENERATOR}/${key}`, seed, shape[0]);
    let norm = 0;
    for (let i = 0; i < u.length; i++) {
      u[i] = 2 * u[i] - 1;
      norm += u[i] * u[i];
    }
    norm = Math.max(Math.sqrt(norm), 1e-12);
    extras.set(key, f32([...shape], Float32Array.from(u, (x) => x / norm)));
  }
  return extras;
}

/** Intermediate tensors for debugging (NHWC). */
export interface SpadeGeneratorTaps {
  output: tf.Tensor4D;
  /** After fc: [N, 64, 64, 512]. */
  fcOut: tf.Tensor4D;
  /** After G_middle_0: [N, 64, 64, 512]. */
  gMiddle0Out: tf.Tensor4D;
}

/**
 * G's stages in order: `fc`, the eight SPADE blocks (G_middle_0..5, up_0,
 * up_1), `conv_img`. A SpadeGenerator may hold a run of them only (frame
 * workers that split G between them, each with its part's weights).
 */
export const G_STAGES: readonly string[] = ['fc', ...blockDefs().map((b) => b.name), 'conv_img'];

export interface SpadeGeneratorOptions {
  /** The stages [from, to) of G_STAGES to build (default: all). */
  stages?: [number, number];
}

export class SpadeGenerator implements SpadeGeneratorNet {
  /** The stages this instance holds, [from, to) of G_STAGES. */
  readonly stages: [number, number];
  readonly fc?: Conv2d;
  /** The SPADE blocks, undefined where this instance does not hold them. */
  readonly blocks: (SPADEResnetBlock | undefined)[];
  readonly upsampleBefore: boolean[];
  /** The blocks' names in the checkpoint (G_middle_0 ... up_1). */
  readonly names: string[];
  readonly convImg?: Conv2d;

  constructor(p: ParamReader, opts: SpadeGeneratorOptions = {}) {
    const [from, to] = (this.stages = opts.stages ?? [0, G_STAGES.length]);
    if (!(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && from < to && to <= G_STAGES.length))
      throw new Error(`SpadeGenerator: stages must be a run [from, to) within 0..${G_STAGES.length}, got [${from}, ${to}]`);
    const holds = (stage: number) => stage >= from && stage < to;
    const made: { dispose(): void }[] = [];
    try {
      if (holds(0)) made.push((this.fc = new Conv2d(p, 'fc', { padding: 1 })));
      const defs = blockDefs();
      this.blocks = defs.map((b, i) => (holds(i + 1) ? (made[made.length] = new SPADEResnetBlock(p, b.name, b.fin, b.fout)) : undefined));
      this.names = defs.map((b) => b.name);
      this.upsampleBefore = defs.map((b) => b.upsample);
      if (holds(G_STAGES.length - 1)) this.convImg = new Conv2d(p, 'conv_img.0', { padding: 1 });
    } catch (e) {
      for (const m of made) m.dispose();
      throw e;
    }
  }

  /**
   * Stages [from, to) of G on `x`, the tensor before stage `from` (the
   * input feature itself when from is 0), conditioned on G's input
   * `feature`: the tensor after stage to − 1 (the image when `to` is the
   * last stage). The caller keeps x and feature.
   */
  applyStages(feature: tf.Tensor4D, x: tf.Tensor4D, from: number, to: number): tf.Tensor4D {
    if (from < this.stages[0] || to > this.stages[1] || from >= to)
      throw new Error(`SpadeGenerator.applyStages: stages [${from}, ${to}) asked, this part holds [${this.stages[0]}, ${this.stages[1]})`);
    return this.run(feature, false, undefined, from, to, x).output;
  }

  apply(feature: tf.Tensor4D): tf.Tensor4D {
    const { output, fcOut, gMiddle0Out } = this.run(feature, false);
    fcOut?.dispose();
    gMiddle0Out?.dispose();
    return output;
  }

  /**
   * The output with the fixtures' two taps; `tap` is offered the reference's
   * submodule outputs by path: `fc`, `G_middle_0..5`, `up_0`, `up_1` (each
   * block's own too, e.g. `up_0.conv_s`, `G_middle_2.norm_1.mlp_gamma`), `up`
   * (the nearest ×2 upsampling, called twice), `conv_img.0` (the conv),
   * `conv_img.1` and `conv_img` (after PixelShuffle, before the sigmoid), ''.
   */
  applyWithTaps(feature: tf.Tensor4D, tap?: TapFn): SpadeGeneratorTaps {
    const { output, fcOut, gMiddle0Out } = this.run(feature, true, tap);
    return { output, fcOut: fcOut as tf.Tensor4D, gMiddle0Out: gMiddle0Out as tf.Tensor4D };
  }

  private run(
    feature: tf.Tensor4D,
    taps: boolean,
    tap?: TapFn,
    from = 0,
    to = G_STAGES.length,
    input: tf.Tensor4D = feature,
  ): { output: tf.Tensor4D; fcOut?: tf.Tensor4D; gMiddle0Out?: tf.Tensor4D } {
    if (from < this.stages[0] || to > this.stages[1]) throw new Error(`SpadeGenerator: this part holds stages [${this.stages[0]}, ${this.stages[1]}) only`);
    const [, h, , c] = feature.shape;
    if (c !== G_INPUT_CHANNELS) throw new Error(`SpadeGenerator: expected ${G_INPUT_CHANNELS} input channels (NHWC), got shape ${JSON.stringify(feature.shape)}`);
    // The segmentation map of every SPADE is the input feature, resized
    // (nearest) to each block's resolution once, here.
    const segs = new Map<number, tf.Tensor4D>([[h, feature]]);
    const segAt = (x: tf.Tensor4D): tf.Tensor4D => {
      let s = segs.get(x.shape[1]);
      if (!s) {
        s = resizeNearest(feature, [x.shape[1], x.shape[2]]);
        segs.set(x.shape[1], s);
      }
      return s;
    };
    let fcOut: tf.Tensor4D | undefined;
    let gMiddle0Out: tf.Tensor4D | undefined;
    let x: tf.Tensor4D | undefined;
    try {
      const last = G_STAGES.length - 1;
      if (from === 0) {
        x = this.fc!.apply(feature);
        if (taps) fcOut = x.clone();
        tap?.('fc', x);
      } else x = input.clone();
      // Replace x by f(x), freeing the old x.
      const step = (f: (t: tf.Tensor4D) => tf.Tensor4D): void => {
        const next = f(x!);
        x!.dispose();
        x = next;
      };
      for (let i = Math.max(0, from - 1); i < Math.min(this.blocks.length, to - 1); i++) {
        const block = this.blocks[i]!;
        if (this.upsampleBefore[i]) {
          step((t) => resizeNearest(t, [2 * t.shape[1], 2 * t.shape[2]]));
          tap?.('up', x!);
        }
        // The block offers its own output (and its parts') under its name.
        step((t) => block.apply(t, segAt(t), scopedTap(tap, this.names[i])));
        if (taps && i === 0) gMiddle0Out = x!.clone();
      }
      if (to <= last) {
        const output = x;
        x = undefined;
        return { output, fcOut, gMiddle0Out };
      }
      const final = x;
      const output = tf.tidy(() => {
        const conv = this.convImg!.apply(tf.leakyRelu(final, 0.2));
        tap?.('conv_img.0', conv);
        const shuffled = pixelShuffle(conv, UPSCALE);
        tap?.('conv_img.1', shuffled);
        tap?.('conv_img', shuffled);
        const y = tf.sigmoid(shuffled) as tf.Tensor4D;
        tap?.('', y);
        return y;
      });
      return { output, fcOut, gMiddle0Out };
    } catch (e) {
      fcOut?.dispose();
      gMiddle0Out?.dispose();
      throw e;
    } finally {
      x?.dispose();
      for (const [res, s] of segs) if (res !== h) s.dispose();
    }
  }

  dispose(): void {
    this.fc?.dispose();
    for (const b of this.blocks) b?.dispose();
    this.convImg?.dispose();
  }
}
