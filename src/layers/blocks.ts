/**
 * Convolution blocks of the first-order-motion family (conv → batch norm →
 * activation, with pooling or upsampling), channel-last. Prefixes are the
 * state-dict prefixes of the block (e.g. 'down_blocks.0').
 */
import * as tf from '@tensorflow/tfjs';
import type { ParamReader } from './params.js';
import { BatchNorm, Conv2d, Conv3d, type Disposable } from './core.js';

/** AvgPool2d(2) on NHWC. */
export function avgPool2x2(x: tf.Tensor4D): tf.Tensor4D {
  return tf.avgPool(x, 2, 2, 'valid');
}

/** AvgPool3d((1, 2, 2)) on NDHWC: pools H and W of every depth slice. */
export function avgPool3dHW(x: tf.Tensor5D): tf.Tensor5D {
  return tf.tidy(() => {
    const [n, d, h, w, c] = x.shape;
    const y = tf.avgPool(x.reshape([n * d, h, w, c]) as tf.Tensor4D, 2, 2, 'valid');
    return y.reshape([n, d, h / 2, w / 2, c]) as tf.Tensor5D;
  });
}

/**
 * F.interpolate(scale_factor=(1, 2, 2)), nearest, on NDHWC. Nearest at an
 * exact factor 2 reads source index floor(dst / 2), as resizeNearestNeighbor
 * without align-corners or half-pixel centres does.
 */
export function upsampleNearest3dHW(x: tf.Tensor5D): tf.Tensor5D {
  return tf.tidy(() => {
    const [n, d, h, w, c] = x.shape;
    const y = tf.image.resizeNearestNeighbor(x.reshape([n * d, h, w, c]) as tf.Tensor4D, [2 * h, 2 * w], false, false);
    return y.reshape([n, d, 2 * h, 2 * w, c]) as tf.Tensor5D;
  });
}

/** SameBlock2d: conv → BN → ReLU (or LeakyReLU 0.01); BN folded into the conv at load. */
export class SameBlock2d implements Disposable {
  readonly conv: Conv2d;
  readonly lrelu: boolean;
  constructor(p: ParamReader, prefix: string, opts: { padding?: number; lrelu?: boolean } = {}) {
    this.lrelu = opts.lrelu ?? false;
    this.conv = new Conv2d(p, `${prefix}.conv`, { padding: opts.padding ?? 1, norm: new BatchNorm(p, `${prefix}.norm`) });
  }
  apply(x: tf.Tensor4D): tf.Tensor4D {
    if (!this.lrelu) return this.conv.apply(x, 'relu');
    return tf.tidy(() => tf.leakyRelu(this.conv.apply(x), 0.01));
  }
  dispose(): void {
    this.conv.dispose();
  }
}

/** DownBlock2d: conv → BN → ReLU → AvgPool2d(2); BN folded into the conv. */
export class DownBlock2d implements Disposable {
  readonly conv: Conv2d;
  constructor(p: ParamReader, prefix: string, opts: { padding?: number } = {}) {
    this.conv = new Conv2d(p, `${prefix}.conv`, { padding: opts.padding ?? 1, norm: new BatchNorm(p, `${prefix}.norm`) });
  }
  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => avgPool2x2(this.conv.apply(x, 'relu')));
  }
  dispose(): void {
    this.conv.dispose();
  }
}

/** ResBlock3d: x + conv2(relu(BN2(conv1(relu(BN1(x)))))). */
export class ResBlock3d implements Disposable {
  readonly norm1: BatchNorm;
  readonly conv1: Conv3d;
  readonly norm2: BatchNorm;
  readonly conv2: Conv3d;
  constructor(p: ParamReader, prefix: string, opts: { padding?: number } = {}) {
    const padding = opts.padding ?? 1;
    this.norm1 = new BatchNorm(p, `${prefix}.norm1`);
    this.conv1 = new Conv3d(p, `${prefix}.conv1`, { padding });
    this.norm2 = new BatchNorm(p, `${prefix}.norm2`);
    this.conv2 = new Conv3d(p, `${prefix}.conv2`, { padding });
  }
  apply(x: tf.Tensor5D): tf.Tensor5D {
    return tf.tidy(() => {
      let out = this.conv1.apply(tf.relu(this.norm1.apply(x)));
      out = this.conv2.apply(tf.relu(this.norm2.apply(out)));
      return tf.add(out, x);
    });
  }
  dispose(): void {
    for (const m of [this.norm1, this.conv1, this.norm2, this.conv2]) m.dispose();
  }
}

/** DownBlock3d: conv3d → BN → ReLU → AvgPool3d((1, 2, 2)); BN folded into the conv. */
export class DownBlock3d implements Disposable {
  readonly conv: Conv3d;
  constructor(p: ParamReader, prefix: string, opts: { padding?: number } = {}) {
    this.conv = new Conv3d(p, `${prefix}.conv`, { padding: opts.padding ?? 1, norm: new BatchNorm(p, `${prefix}.norm`) });
  }
  apply(x: tf.Tensor5D): tf.Tensor5D {
    return tf.tidy(() => avgPool3dHW(this.conv.apply(x, 'relu')));
  }
  dispose(): void {
    this.conv.dispose();
  }
}

/** UpBlock3d: nearest upsample (1, 2, 2) → conv3d → BN → ReLU; BN folded into the conv. */
export class UpBlock3d implements Disposable {
  readonly conv: Conv3d;
  constructor(p: ParamReader, prefix: string, opts: { padding?: number } = {}) {
    this.conv = new Conv3d(p, `${prefix}.conv`, { padding: opts.padding ?? 1, norm: new BatchNorm(p, `${prefix}.norm`) });
  }
  apply(x: tf.Tensor5D): tf.Tensor5D {
    return tf.tidy(() => this.conv.apply(upsampleNearest3dHW(x), 'relu'));
  }
  dispose(): void {
    this.conv.dispose();
  }
}
