/**
 * Building blocks with PyTorch semantics on channel-last tensors (NHWC,
 * NDHWC). Weights arrive in PyTorch layout and are converted once, here, at
 * construction. Every op used exists on the cpu, wasm, webgl, webgpu and
 * tensorflow backends: there is no Conv3D kernel on wasm, so 3-D convolutions
 * are a depth-stacked 2-D convolution.
 */
import * as tf from '@tensorflow/tfjs';
import type { ParamReader } from '../weights/params.js';

/** Something that owns tfjs tensors. */
export interface Disposable {
  dispose(): void;
}

/** torch Conv2d weight [O, I, kh, kw] → tfjs filter [kh, kw, I, O]. */
export function torchConv2dFilter(w: tf.Tensor): tf.Tensor4D {
  return tf.tidy(() => tf.transpose(w, [2, 3, 1, 0])) as tf.Tensor4D;
}

/** torch Conv3d weight [O, I, kd, kh, kw] → depth-stacked 2-D filter [kh, kw, kd*I, O]. */
export function torchConv3dFilter(w: tf.Tensor): tf.Tensor4D {
  const [o, i, kd, kh, kw] = w.shape;
  return tf.tidy(() => tf.transpose(w, [3, 4, 2, 1, 0]).reshape([kh, kw, kd * i, o])) as tf.Tensor4D;
}

export interface ConvOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
  /** 1 (default) or the number of input channels (depthwise). */
  groups?: number;
  bias?: boolean;
}

/** nn.Conv2d on NHWC. Zero padding, symmetric, as PyTorch's `padding=p`. */
export class Conv2d implements Disposable {
  readonly filter: tf.Tensor4D;
  readonly bias?: tf.Tensor1D;
  readonly stride: number;
  readonly padding: number;
  readonly dilation: number;
  readonly depthwise: boolean;

  constructor(p: ParamReader, prefix: string, opts: ConvOptions = {}) {
    const w = p.tensor(`${prefix}.weight`);
    this.depthwise = (opts.groups ?? 1) > 1;
    if (this.depthwise) {
      if (opts.groups !== w.shape[0] || w.shape[1] !== 1) throw new Error(`${prefix}: only depthwise grouped convolutions are supported`);
      // [C, 1, kh, kw] → [kh, kw, C, 1]
      this.filter = tf.tidy(() => tf.transpose(w, [2, 3, 0, 1])) as tf.Tensor4D;
    } else this.filter = torchConv2dFilter(w);
    w.dispose();
    if (opts.bias ?? true) this.bias = p.tensor(`${prefix}.bias`) as tf.Tensor1D;
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    this.dilation = opts.dilation ?? 1;
  }

  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const p = this.padding;
      const xp = p > 0 ? tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]) : x;
      let y = this.depthwise
        ? tf.depthwiseConv2d(xp, this.filter, this.stride, 'valid', 'NHWC', this.dilation)
        : tf.conv2d(xp, this.filter, this.stride, 'valid', 'NHWC', this.dilation);
      if (this.bias) y = tf.add(y, this.bias);
      return y;
    });
  }

  dispose(): void {
    this.filter.dispose();
    this.bias?.dispose();
  }
}

/**
 * nn.Conv3d (stride 1, symmetric zero padding) on NDHWC. The kd depth taps
 * are stacked into channels and one conv2d runs over all depth slices as a
 * batch: y[n, d] = conv2d(concat_k x[n, d + k - pd], W[k]).
 */
export class Conv3d implements Disposable {
  readonly filter: tf.Tensor4D;
  readonly bias?: tf.Tensor1D;
  readonly kd: number;
  readonly padding: [number, number, number];

  constructor(p: ParamReader, prefix: string, opts: { padding?: number | [number, number, number]; bias?: boolean } = {}) {
    const w = p.tensor(`${prefix}.weight`);
    if (w.rank !== 5) throw new Error(`${prefix}.weight: expected a 5-D Conv3d weight, got shape ${JSON.stringify(w.shape)}`);
    this.kd = w.shape[2] as number;
    this.filter = torchConv3dFilter(w);
    w.dispose();
    if (opts.bias ?? true) this.bias = p.tensor(`${prefix}.bias`) as tf.Tensor1D;
    const pad = opts.padding ?? 0;
    this.padding = typeof pad === 'number' ? [pad, pad, pad] : pad;
  }

  apply(x: tf.Tensor5D): tf.Tensor5D {
    return tf.tidy(() => {
      const [n, d, h, w, c] = x.shape;
      const [pd, ph, pw] = this.padding;
      const xp = pd || ph || pw ? tf.pad(x, [[0, 0], [pd, pd], [ph, ph], [pw, pw], [0, 0]]) : x;
      const dOut = d + 2 * pd - this.kd + 1;
      const hp = h + 2 * ph;
      const wp = w + 2 * pw;
      const stacked =
        this.kd === 1
          ? xp
          : tf.concat(
              Array.from({ length: this.kd }, (_, k) => tf.slice(xp, [0, k, 0, 0, 0], [n, dOut, hp, wp, c])),
              4,
            );
      let y: tf.Tensor4D = tf.conv2d(stacked.reshape([n * dOut, hp, wp, this.kd * c]) as tf.Tensor4D, this.filter, 1, 'valid');
      if (this.bias) y = tf.add(y, this.bias);
      return y.reshape([n, dOut, y.shape[1], y.shape[2], y.shape[3]]) as tf.Tensor5D;
    });
  }

  dispose(): void {
    this.filter.dispose();
    this.bias?.dispose();
  }
}

/** BatchNorm (2-D or 3-D) in eval mode on the last axis: y = x * scale + shift. */
export class BatchNorm implements Disposable {
  readonly scale: tf.Tensor1D;
  readonly shift: tf.Tensor1D;

  constructor(p: ParamReader, prefix: string, eps = 1e-5) {
    const w = p.floats(`${prefix}.weight`);
    const b = p.floats(`${prefix}.bias`);
    const mean = p.floats(`${prefix}.running_mean`);
    const variance = p.floats(`${prefix}.running_var`);
    const scale = new Float32Array(w.length);
    const shift = new Float32Array(w.length);
    for (let i = 0; i < w.length; i++) {
      // Same association as PyTorch's eval batch norm: (x - mean) / sqrt(var + eps) * w + b
      const inv = Math.fround(1 / Math.fround(Math.sqrt(Math.fround(variance[i] + eps))));
      scale[i] = Math.fround(inv * w[i]);
      shift[i] = Math.fround(b[i] - Math.fround(mean[i] * scale[i]));
    }
    this.scale = tf.tensor1d(scale);
    this.shift = tf.tensor1d(shift);
  }

  apply<T extends tf.Tensor>(x: T): T {
    return tf.tidy(() => tf.add(tf.mul(x, this.scale), this.shift)) as T;
  }

  dispose(): void {
    this.scale.dispose();
    this.shift.dispose();
  }
}

/** nn.Linear: y = x W^T + b, on [..., in]. */
export class Linear implements Disposable {
  readonly weight: tf.Tensor2D; // [in, out]
  readonly bias?: tf.Tensor1D;

  constructor(p: ParamReader, prefix: string, opts: { bias?: boolean } = {}) {
    const w = p.tensor(`${prefix}.weight`);
    this.weight = tf.tidy(() => tf.transpose(w)) as tf.Tensor2D;
    w.dispose();
    if (opts.bias ?? true) this.bias = p.tensor(`${prefix}.bias`) as tf.Tensor1D;
  }

  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const shape = x.shape;
      const x2 = x.reshape([-1, shape[shape.length - 1]]) as tf.Tensor2D;
      let y: tf.Tensor = tf.matMul(x2, this.weight);
      if (this.bias) y = tf.add(y, this.bias);
      return y.reshape([...shape.slice(0, -1), this.weight.shape[1]]);
    });
  }

  dispose(): void {
    this.weight.dispose();
    this.bias?.dispose();
  }
}

/** Dispose every Disposable in a list (or nested lists). */
export function disposeAll(items: Iterable<Disposable | Disposable[] | undefined>): void {
  for (const it of items) {
    if (!it) continue;
    if (Array.isArray(it)) disposeAll(it);
    else it.dispose();
  }
}
