/**
 * SPADE building blocks (Park et al. 2019) as LivePortrait's generator uses
 * them, channel-last: parameter-free instance norm, SPADE (norm modulated by
 * a segmentation/feature map), and the SPADE residual block with spectrally
 * normalised convolutions.
 */
import * as tf from '@tensorflow/tfjs';
import { gpuKernels, instanceNormModulate, instanceNormStats } from './webgpu_kernels.js';
import type { ParamReader } from './params.js';
import type { ParamSpec } from './params.js';
import { Conv2d, type Disposable } from './core.js';
import { spectralConv2d } from './spectral_norm.js';
import { type TapFn, scopedTap } from './taps.js';

/** Source index of F.interpolate(mode='nearest') for output index dst: floor(dst · in/out), clamped. */
export function nearestIndex(dst: number, inSize: number, outSize: number): number {
  const scale = Math.fround(inSize / outSize); // PyTorch computes the scale in float32
  return Math.min(Math.floor(Math.fround(dst * scale)), inSize - 1);
}

/** F.interpolate(x, size=[oh, ow], mode='nearest') on NHWC. */
export function resizeNearest(x: tf.Tensor4D, size: [number, number]): tf.Tensor4D {
  const [, h, w] = x.shape;
  const [oh, ow] = size;
  if (oh === h && ow === w) return x.clone();
  return tf.tidy(() => {
    // Whole-number upscaling: repeat every pixel (fy × fx), no gather needed.
    if (oh % h === 0 && ow % w === 0) {
      // Whole factors: source index floor(dst / f), which is what the native
      // resize kernel computes without align-corners or half-pixel centres.
      return tf.image.resizeNearestNeighbor(x, [oh, ow], false, false);
    }
    const rows = Int32Array.from({ length: oh }, (_, i) => nearestIndex(i, h, oh));
    const cols = Int32Array.from({ length: ow }, (_, j) => nearestIndex(j, w, ow));
    return tf.gather(tf.gather(x, rows, 1), cols, 2) as tf.Tensor4D;
  });
}

/** nn.InstanceNorm2d(affine=False, track_running_stats=False) on NHWC: per-image, per-channel (biased variance). */
export class InstanceNorm2d {
  constructor(readonly eps = 1e-5) {}

  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      // tf.moments' arithmetic, with x − mean computed once and shared (moments would copy x and keep both).
      const mean = tf.mean(x, [1, 2], true);
      const centred = tf.sub(x, mean);
      const squared = tf.square(centred);
      const variance = tf.mean(squared, [1, 2], true);
      squared.dispose();
      const y = tf.mul(centred, tf.rsqrt(tf.add(variance, this.eps))) as tf.Tensor4D;
      centred.dispose();
      return y;
    });
  }
}

/** Hidden width of SPADE's shared MLP. */
export const SPADE_HIDDEN = 128;

/**
 * SPADE(norm_nc, label_nc): instance_norm(x) · (1 + gamma(seg)) + beta(seg),
 * seg resized (nearest) to x's resolution, gamma/beta = conv3x3(relu(conv3x3(seg))).
 */
export class SPADE implements Disposable {
  readonly norm = new InstanceNorm2d();
  readonly mlpShared: Conv2d;
  // Two convolutions, not one of twice the width: splitting the wider output
  // costs more on wasm than the wider GEMM saves (measured). They share the
  // Winograd transform of their input where that path is taken.
  readonly mlpGamma: Conv2d;
  readonly mlpBeta: Conv2d;

  constructor(p: ParamReader, prefix: string) {
    this.mlpShared = new Conv2d(p, `${prefix}.mlp_shared.0`, { padding: 1 });
    this.mlpGamma = new Conv2d(p, `${prefix}.mlp_gamma`, { padding: 1 });
    this.mlpBeta = new Conv2d(p, `${prefix}.mlp_beta`, { padding: 1 });
  }

  /** Parameters of SPADE(normNc, labelNc) at `prefix`, in checkpoint order. */
  static specs(prefix: string, normNc: number, labelNc: number): ParamSpec[] {
    const h = SPADE_HIDDEN;
    return [
      { key: `${prefix}.mlp_shared.0.weight`, shape: [h, labelNc, 3, 3] },
      { key: `${prefix}.mlp_shared.0.bias`, shape: [h] },
      { key: `${prefix}.mlp_gamma.weight`, shape: [normNc, h, 3, 3] },
      { key: `${prefix}.mlp_gamma.bias`, shape: [normNc] },
      { key: `${prefix}.mlp_beta.weight`, shape: [normNc, h, 3, 3] },
      { key: `${prefix}.mlp_beta.bias`, shape: [normNc] },
    ];
  }

  /**
   * Taps (paths inside this SPADE): `param_free_norm`, `mlp_shared` (after
   * its ReLU), `mlp_gamma`, `mlp_beta`, '' (before `leakySlope`'s
   * LeakyReLU, if given; on webgpu it is fused into the modulation).
   */
  apply(x: tf.Tensor4D, segmap: tf.Tensor4D, tap?: TapFn, leakySlope?: number): tf.Tensor4D {
    // Intermediates are freed as soon as they are used: at G's 256² layers each is 64 MiB.
    return tf.tidy(() => {
      const seg = segmap.shape[1] === x.shape[1] && segmap.shape[2] === x.shape[2] ? segmap : resizeNearest(segmap, [x.shape[1], x.shape[2]]);
      const actv = this.mlpShared.apply(seg, 'relu');
      if (seg !== segmap) seg.dispose();
      tap?.('mlp_shared', actv);
      const [gamma, beta] = Conv2d.applyShared([this.mlpGamma, this.mlpBeta], actv);
      actv.dispose();
      tap?.('mlp_gamma', gamma);
      tap?.('mlp_beta', beta);
      if (gpuKernels()) {
        // Two dispatches for the norm, the modulation and the activation (eleven, with transposes, apart).
        const stats = instanceNormStats(x);
        // Taps get their tensors only when asked for them.
        tap?.('param_free_norm', () => this.norm.apply(x));
        tap?.('', () => instanceNormModulate(x, stats, gamma, beta, this.norm.eps));
        return instanceNormModulate(x, stats, gamma, beta, this.norm.eps, leakySlope);
      }
      const scale = tf.add(gamma, 1);
      gamma.dispose();
      const normalized = this.norm.apply(x);
      tap?.('param_free_norm', normalized);
      const scaled = tf.mul(normalized, scale);
      tf.dispose([normalized, scale]);
      const out = tf.add(scaled, beta) as tf.Tensor4D;
      tf.dispose([scaled, beta]);
      tap?.('', out);
      if (leakySlope === undefined) return out;
      const a = tf.leakyRelu(out, leakySlope) as tf.Tensor4D;
      out.dispose();
      return a;
    });
  }

  dispose(): void {
    this.mlpShared.dispose();
    this.mlpGamma.dispose();
    this.mlpBeta.dispose();
  }
}

/** Keys of a spectrally normalised conv in checkpoint order (parameters, then the u/v buffers). */
function spectralConvSpecs(prefix: string, shape: number[], bias: boolean): ParamSpec[] {
  const [out, ...rest] = shape;
  return [
    ...(bias ? [{ key: `${prefix}.bias`, shape: [out] }] : []),
    { key: `${prefix}.weight_orig`, shape },
    { key: `${prefix}.weight_u`, shape: [out] },
    { key: `${prefix}.weight_v`, shape: [rest.reduce((a, b) => a * b, 1)] },
  ];
}

/**
 * SPADEResnetBlock(fin, fout) with norm 'spadespectralinstance':
 * out = shortcut(x) + conv_1(lrelu(norm_1(conv_0(lrelu(norm_0(x, seg))), seg))),
 * shortcut = conv_s(norm_s(x, seg)) (1×1, no bias) when fin ≠ fout, else x.
 * LeakyReLU slope 0.2; convolutions spectrally normalised.
 */
export class SPADEResnetBlock implements Disposable {
  readonly learnedShortcut: boolean;
  readonly conv0: Conv2d;
  readonly conv1: Conv2d;
  readonly convS?: Conv2d;
  readonly norm0: SPADE;
  readonly norm1: SPADE;
  readonly normS?: SPADE;

  constructor(p: ParamReader, prefix: string, fin: number, fout: number) {
    this.learnedShortcut = fin !== fout;
    this.conv0 = spectralConv2d(p, `${prefix}.conv_0`, { padding: 1 });
    this.conv1 = spectralConv2d(p, `${prefix}.conv_1`, { padding: 1 });
    if (this.learnedShortcut) this.convS = spectralConv2d(p, `${prefix}.conv_s`, { bias: false });
    this.norm0 = new SPADE(p, `${prefix}.norm_0`);
    this.norm1 = new SPADE(p, `${prefix}.norm_1`);
    if (this.learnedShortcut) this.normS = new SPADE(p, `${prefix}.norm_s`);
  }

  /** Parameters of SPADEResnetBlock(fin, fout, label_nc) at `prefix`, in checkpoint order. */
  static specs(prefix: string, fin: number, fout: number, labelNc: number): ParamSpec[] {
    const fmiddle = Math.min(fin, fout);
    const learned = fin !== fout;
    return [
      ...spectralConvSpecs(`${prefix}.conv_0`, [fmiddle, fin, 3, 3], true),
      ...spectralConvSpecs(`${prefix}.conv_1`, [fout, fmiddle, 3, 3], true),
      ...(learned ? spectralConvSpecs(`${prefix}.conv_s`, [fout, fin, 1, 1], false) : []),
      ...SPADE.specs(`${prefix}.norm_0`, fin, labelNc),
      ...SPADE.specs(`${prefix}.norm_1`, fmiddle, labelNc),
      ...(learned ? SPADE.specs(`${prefix}.norm_s`, fin, labelNc) : []),
    ];
  }

  /** Taps (paths inside this block): `norm_0`, `conv_0`, `norm_1`, `conv_1`, `norm_s`, `conv_s` (each SPADE's own too, e.g. `norm_0.mlp_gamma`), ''. */
  apply(x: tf.Tensor4D, seg: tf.Tensor4D, tap?: TapFn): tf.Tensor4D {
    return tf.tidy(() => {
      // A SPADE offers its own output at '' (here: `name`).
      // Each intermediate is freed once used (the input x is the caller's).
      const spade = (norm: SPADE, name: string, t: tf.Tensor4D, lrelu: boolean) => norm.apply(t, seg, scopedTap(tap, name), lrelu ? 0.2 : undefined);
      const conv = (c: Conv2d, name: string, t: tf.Tensor4D) => {
        const y = c.apply(t);
        t.dispose();
        tap?.(name, y);
        return y;
      };
      const xS = this.convS && this.normS ? conv(this.convS, 'conv_s', spade(this.normS, 'norm_s', x, false)) : x;
      const h = conv(this.conv0, 'conv_0', spade(this.norm0, 'norm_0', x, true));
      const dx = conv(this.conv1, 'conv_1', spade(this.norm1, 'norm_1', h, true));
      h.dispose();
      const out = tf.add(xS, dx) as tf.Tensor4D;
      tap?.('', out);
      return out;
    });
  }

  dispose(): void {
    for (const m of [this.conv0, this.conv1, this.convS, this.norm0, this.norm1, this.normS]) m?.dispose();
  }
}
