/**
 * ConvNeXt-V2 building blocks on channel-last tensors (NHWC): LayerNorm over
 * the channel axis, exact (erf) GELU, Global Response Normalization and the
 * ConvNeXt-V2 residual block. Weights arrive in PyTorch layout.
 */
import * as tf from '@tensorflow/tfjs';
import type { ParamReader } from './params.js';
import type { ParamSpec } from './params.js';
import { Conv2d, type Disposable } from './core.js';
import { geluErf, gpuKernels, grnScaleGpu, normalizeLastAxisGpu } from './webgpu_kernels.js';

/** (x - mean) / sqrt(var + eps) over the last axis, biased variance, without affine. */
export function normalizeLastAxis<T extends tf.Tensor>(x: T, eps: number): T {
  if (gpuKernels()) return normalizeLastAxisGpu(x, eps); // one dispatch on webgpu
  return tf.tidy(() => {
    const d = tf.sub(x, tf.mean(x, -1, true));
    return tf.mul(d, tf.rsqrt(tf.add(tf.mean(tf.square(d), -1, true), eps)));
  }) as T;
}

/**
 * LayerNorm over the last axis (biased variance): PyTorch's nn.LayerNorm on
 * channels-last input, and ConvNeXt's "channels_first" LayerNorm once the
 * tensor is NHWC (both normalise each pixel over its channels).
 */
export class LayerNorm implements Disposable {
  readonly weight: tf.Tensor1D;
  readonly bias: tf.Tensor1D;
  readonly eps: number;

  constructor(p: ParamReader, prefix: string, eps = 1e-6) {
    this.weight = p.tensor(`${prefix}.weight`) as tf.Tensor1D;
    this.bias = p.tensor(`${prefix}.bias`) as tf.Tensor1D;
    this.eps = eps;
  }

  apply<T extends tf.Tensor>(x: T): T {
    return tf.tidy(() => tf.add(tf.mul(normalizeLastAxis(x, this.eps), this.weight), this.bias)) as T;
  }

  dispose(): void {
    this.weight.dispose();
    this.bias.dispose();
  }
}

/** nn.GELU() (exact): x/2 · (1 + erf(x/√2)). tf.erf exists on every backend. */
export function gelu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1))) as T;
}

/**
 * GRN (ConvNeXt-V2) on NHWC: G = ‖x‖₂ over H, W per channel,
 * N = G / (mean_c G + eps), y = γ·(x·N) + β + x (eps 1e-6).
 */
export class GRN implements Disposable {
  readonly gamma: tf.Tensor1D;
  readonly beta: tf.Tensor1D;

  constructor(p: ParamReader, prefix: string) {
    // Stored as [1, 1, 1, C]: already channel-last; kept flat for broadcasting.
    this.gamma = tf.tensor1d(p.floats(`${prefix}.gamma`));
    this.beta = tf.tensor1d(p.floats(`${prefix}.beta`));
  }

  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => tf.add(tf.mul(x, grnScale(x, this.gamma, 1e-6)), this.beta));
  }

  dispose(): void {
    this.gamma.dispose();
    this.beta.dispose();
  }
}

/**
 * GRN's per-sample, per-channel factor γ·N + 1 [N, 1, 1, C], so that
 * GRN(x) = x · factor + β; times `post` where given. Two dispatches on webgpu.
 */
export function grnScale(x: tf.Tensor4D, gamma: tf.Tensor1D, eps: number, post?: number): tf.Tensor4D {
  if (gpuKernels()) return grnScaleGpu(x, gamma, eps, post);
  return tf.tidy(() => {
    const gx = tf.sqrt(tf.sum(tf.square(x), [1, 2], true)); // [N, 1, 1, C]
    const nx = tf.div(gx, tf.add(tf.mean(gx, -1, true), eps));
    const factor = tf.add(tf.mul(nx, gamma), 1);
    return (post === undefined ? factor : tf.mul(factor, post)) as tf.Tensor4D;
  });
}

/**
 * ConvNeXt-V2 block: x + pwconv2(GRN(GELU(pwconv1(LN(dwconv7x7(x)))))),
 * drop-path being the identity in eval mode.
 *
 * For speed the affine parts are folded into the pointwise layers at load
 * time (float64, rounded once): LN's weight and bias into pwconv1, together
 * with GELU's 1/√2, so that pwconv1 yields u = h/√2 and GELU(h) = z/√2 with
 * z = u·(1 + erf u); GRN on z/√2 is z·(γN + 1)/√2 + β where N uses eps·√2;
 * β goes into pwconv2's bias. Biases ride in fused kernels.
 */
export class ConvNeXtV2Block implements Disposable {
  readonly dwFilter: tf.Tensor4D; // [7, 7, C, 1]
  readonly dwBias: tf.Tensor1D;
  readonly lnEps = 1e-6;
  readonly w1: tf.Tensor2D; // [C, 4C], diag(ln.w) · pwconv1ᵀ / √2
  readonly b1: tf.Tensor1D; // (pwconv1(ln.b)) / √2
  readonly gamma: tf.Tensor1D;
  readonly w2: tf.Tensor2D; // [4C, C]
  readonly b2: tf.Tensor1D; // pwconv2(β)

  constructor(p: ParamReader, prefix: string, dim: number) {
    const dw = new Conv2d(p, `${prefix}.dwconv`, { padding: 3, groups: dim });
    this.dwFilter = dw.filter!;
    this.dwBias = dw.bias as tf.Tensor1D;
    const h = 4 * dim;
    const lnW = p.floats(`${prefix}.norm.weight`, [dim]);
    const lnB = p.floats(`${prefix}.norm.bias`, [dim]);
    const W1 = p.floats(`${prefix}.pwconv1.weight`, [h, dim]);
    const B1 = p.floats(`${prefix}.pwconv1.bias`, [h]);
    const w1 = new Float32Array(dim * h);
    const b1 = new Float32Array(h);
    for (let j = 0; j < h; j++) {
      let acc = B1[j];
      for (let c = 0; c < dim; c++) {
        const wjc = W1[j * dim + c];
        w1[c * h + j] = wjc * lnW[c] * Math.SQRT1_2;
        acc += wjc * lnB[c];
      }
      b1[j] = acc * Math.SQRT1_2;
    }
    this.w1 = tf.tensor2d(w1, [dim, h]);
    this.b1 = tf.tensor1d(b1);
    this.gamma = tf.tensor1d(p.floats(`${prefix}.grn.gamma`, [1, 1, 1, h]));
    const beta = p.floats(`${prefix}.grn.beta`, [1, 1, 1, h]);
    const W2 = p.floats(`${prefix}.pwconv2.weight`, [dim, h]);
    const B2 = p.floats(`${prefix}.pwconv2.bias`, [dim]);
    const w2 = new Float32Array(h * dim);
    const b2 = new Float32Array(dim);
    for (let o = 0; o < dim; o++) {
      let acc = B2[o];
      for (let j = 0; j < h; j++) {
        const woj = W2[o * h + j];
        w2[j * dim + o] = woj;
        acc += woj * beta[j];
      }
      b2[o] = acc;
    }
    this.w2 = tf.tensor2d(w2, [h, dim]);
    this.b2 = tf.tensor1d(b2);
  }

  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const [n, hh, ww, c] = x.shape;
      // 7x7 'same' padding at stride 1 is the symmetric padding 3 of the reference.
      const y = tf.fused.depthwiseConv2d({ x, filter: this.dwFilter, strides: 1, pad: 'same', bias: this.dwBias });
      // On webgpu, fused kernels: one each for the norm and the GELU, two for GRN's scale (some 25 dispatches a block become 9).
      const yn = normalizeLastAxis(y, this.lnEps).reshape([n * hh * ww, c]) as tf.Tensor2D;
      const u = tf.fused.matMul({ a: yn, b: this.w1, bias: this.b1 });
      const z = (gpuKernels() ? geluErf(u) : tf.mul(u, tf.add(tf.erf(u), 1))).reshape([n, hh, ww, -1]) as tf.Tensor4D;
      const s = grnScale(z, this.gamma, 1e-6 * Math.SQRT2, Math.SQRT1_2);
      const g = tf.mul(z, s).reshape([n * hh * ww, -1]) as tf.Tensor2D;
      const out = tf.fused.matMul({ a: g, b: this.w2, bias: this.b2 });
      return tf.add(x, out.reshape([n, hh, ww, c]));
    });
  }

  dispose(): void {
    for (const t of [this.dwFilter, this.dwBias, this.w1, this.b1, this.gamma, this.w2, this.b2]) t.dispose();
  }
}

/** Parameter specs (official suffixes, PyTorch shapes, module order) of one block. */
export function convNeXtV2BlockSpecs(prefix: string, dim: number): ParamSpec[] {
  const h = 4 * dim;
  return [
    { key: `${prefix}.dwconv.weight`, shape: [dim, 1, 7, 7] },
    { key: `${prefix}.dwconv.bias`, shape: [dim] },
    { key: `${prefix}.norm.weight`, shape: [dim] },
    { key: `${prefix}.norm.bias`, shape: [dim] },
    { key: `${prefix}.pwconv1.weight`, shape: [h, dim] },
    { key: `${prefix}.pwconv1.bias`, shape: [h] },
    { key: `${prefix}.grn.gamma`, shape: [1, 1, 1, h] },
    { key: `${prefix}.grn.beta`, shape: [1, 1, 1, h] },
    { key: `${prefix}.pwconv2.weight`, shape: [dim, h] },
    { key: `${prefix}.pwconv2.bias`, shape: [dim] },
  ];
}
