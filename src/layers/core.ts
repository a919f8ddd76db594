/**
 * Building blocks with PyTorch semantics on channel-last tensors (NHWC,
 * NDHWC). Weights arrive in PyTorch layout and are converted once, here, at
 * construction. Every op used exists on the cpu, wasm, webgl, webgpu and
 * tensorflow backends: there is no Conv3D kernel on wasm, so 3-D convolutions
 * are sums of 2-D convolutions over depth slices.
 */
import * as tf from '@tensorflow/tfjs';
import type { ParamReader } from './params.js';
import { padNdhwc } from './ndhwc.js';
import { BIAS_POSITION, type HostFilter, type TileGeometry, Winograd3x3, useWinograd } from './winograd.js';
import { conv3dTapSum, gpuKernels } from './webgpu_kernels.js';

/** Something that owns tfjs tensors. */
export interface Disposable {
  dispose(): void;
}

/** torch Conv2d weight [O, I, kh, kw] → tfjs filter [kh, kw, I, O]. */
export function torchConv2dFilter(w: tf.Tensor): tf.Tensor4D {
  return tf.tidy(() => tf.transpose(w, [2, 3, 1, 0])) as tf.Tensor4D;
}

export interface ConvOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
  /** 1 (default) or the number of input channels (depthwise). */
  groups?: number;
  bias?: boolean;
  /**
   * An eval-mode batch norm that follows the convolution, folded into its
   * filter and bias at load (see foldNorm). The convolution takes ownership.
   */
  norm?: BatchNorm;
}

/** Output rows per band of the Winograd path for tall inputs (G's 256² layers go in four bands). */
const WINOGRAD_BAND_ROWS = 64;

/** Activations the fused convolution kernels of every backend apply in place. */
export type FusedActivation = 'linear' | 'relu';

/**
 * nn.Conv2d on NHWC. Zero padding, symmetric, as PyTorch's `padding=p`,
 * done by the convolution kernel itself; the bias (and an optional ReLU) is
 * fused into the same kernel.
 */
export class Conv2d implements Disposable {
  /** The filter [kh, kw, I, O] (depthwise: [kh, kw, C, 1]); none where Winograd's transformed filters replace it. */
  readonly filter?: tf.Tensor4D;
  /** The filter's shape [kh, kw, I, O]. */
  readonly filterShape: [number, number, number, number];
  readonly bias?: tf.Tensor1D;
  readonly stride: number;
  readonly padding: number;
  readonly dilation: number;
  readonly depthwise: boolean;

  constructor(p: ParamReader, prefix: string, opts: ConvOptions = {}) {
    const w = p.tensor(`${prefix}.weight`);
    const depthwise = (opts.groups ?? 1) > 1;
    let filter: tf.Tensor4D;
    if (depthwise) {
      if (opts.groups !== w.shape[0] || w.shape[1] !== 1) throw new Error(`${prefix}: only depthwise grouped convolutions are supported`);
      // [C, 1, kh, kw] → [kh, kw, C, 1]
      filter = tf.tidy(() => tf.transpose(w, [2, 3, 0, 1])) as tf.Tensor4D;
    } else filter = torchConv2dFilter(w);
    w.dispose();
    let bias = opts.bias ?? true ? (p.tensor(`${prefix}.bias`) as tf.Tensor1D) : undefined;
    if (opts.norm) {
      if (depthwise) throw new Error(`${prefix}: depthwise convolutions are not folded with a batch norm`);
      ({ filters: [filter], bias } = foldNorm([filter], bias, opts.norm));
    }
    this.filterShape = filter.shape;
    this.bias = bias;
    this.depthwise = depthwise;
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    this.dilation = opts.dilation ?? 1;
    this.winograd = this.makeWinograd(() => hostFilters(p.floats(`${prefix}.weight`), w.shape, opts.norm?.scaleHost));
    // The transformed filters are all Winograd needs: the direct one is not kept.
    if (this.winograd) filter.dispose();
    else this.filter = filter;
  }

  apply(x: tf.Tensor4D, activation: FusedActivation = 'linear'): tf.Tensor4D {
    if (this.winograd) return Conv2d.applyWinograd([this], x, activation)[0];
    const pad = this.padding > 0 ? this.padding : 'valid';
    const args = { x, filter: this.filter!, strides: this.stride, pad, dilations: this.dilation, bias: this.bias, activation } as const;
    return this.depthwise ? tf.fused.depthwiseConv2d(args) : tf.fused.conv2d(args);
  }

  /**
   * Several convolutions of one input (SPADE's gamma and beta): with
   * Winograd, the input is transformed once for all of them.
   */
  static applyShared(convs: Conv2d[], x: tf.Tensor4D, activation: FusedActivation = 'linear'): tf.Tensor4D[] {
    const padding = convs[0].padding;
    if (!convs.every((c) => c.padding === padding && c.winograd)) return convs.map((c) => c.apply(x, activation));
    return Conv2d.applyWinograd(convs, x, activation);
  }

  /**
   * Convolutions of one input with equal padding, all in Winograd form, the
   * input transformed once. Inputs taller than two bands of output rows go
   * band by band (each band reads its rows plus the 3x3 halo), which bounds
   * the memory of the transformed tensors.
   */
  private static applyWinograd(convs: Conv2d[], x: tf.Tensor4D, activation: FusedActivation): tf.Tensor4D[] {
    const p = convs[0].padding;
    const [n, h, w, c] = x.shape;
    const outH = h + 2 * p - 2;
    const run = (xb: tf.Tensor4D, padRows: [number, number]) => {
      const ys = convs[0].winograd!.stream(xb, p, padRows, convs.length, (o, v, k) => {
        const conv = convs[o];
        const U = conv.winograd!.U[0][k];
        return (conv.bias && k === BIAS_POSITION ? tf.fused.matMul({ a: v, b: U, bias: conv.bias }) : tf.matMul(v, U)) as tf.Tensor2D;
      });
      if (activation !== 'relu') return ys;
      const out = ys.map((y) => tf.relu(y) as tf.Tensor4D);
      tf.dispose(ys);
      return out;
    };
    if (outH <= 2 * WINOGRAD_BAND_ROWS) return run(x, [p, p]);
    const bands: tf.Tensor4D[][] = [];
    try {
      for (let r0 = 0; r0 < outH; r0 += WINOGRAD_BAND_ROWS) {
        const r1 = Math.min(outH, r0 + WINOGRAD_BAND_ROWS);
        // Output rows r0 .. r1 - 1 read padded rows r0 .. r1 + 1, input rows r0 - p .. r1 + 1 - p.
        const lo = Math.max(0, r0 - p);
        const hi = Math.min(h, r1 + 2 - p);
        const xb = tf.slice(x, [0, lo, 0, 0], [n, hi - lo, w, c]);
        try {
          bands.push(run(xb, [lo - (r0 - p), r1 + 2 - p - hi]));
        } finally {
          xb.dispose();
        }
      }
      // Each output's bands are freed as soon as they are joined.
      return convs.map((_, i) => {
        const parts = bands.map((b) => b[i]);
        const y = tf.concat(parts, 1);
        tf.dispose(parts);
        return y;
      });
    } finally {
      tf.dispose(bands.flat());
    }
  }

  /** Whether apply runs Winograd F(2x2, 3x3) rather than the backend's convolution kernel. */
  get usesWinograd(): boolean {
    return this.winograd !== undefined;
  }

  /**
   * The Winograd F(2x2, 3x3) filters, for a stride-1 3x3 convolution that
   * runs faster that way on the backend in use at construction; else none.
   */
  private winograd?: Winograd3x3;

  /** `host`: the filter on the host, as this.filter holds it (the transform reads it there: GPU backends have no synchronous read). */
  private makeWinograd(host: () => HostFilter[]): Winograd3x3 | undefined {
    const [kh, kw, inC, outC] = this.filterShape;
    const eligible = kh === 3 && kw === 3 && this.stride === 1 && this.dilation === 1 && !this.depthwise && this.padding <= 2;
    return eligible && useWinograd(inC, outC) ? new Winograd3x3(host()) : undefined;
  }

  dispose(): void {
    this.filter?.dispose();
    this.bias?.dispose();
    this.winograd?.dispose();
  }
}

/** Depth of kernel from which Conv3d stacks its taps into output channels. */
const STACK_TAPS_MIN_DEPTH = 5;

/**
 * nn.Conv3d (stride 1, symmetric zero padding) on NDHWC, without a Conv3D
 * kernel: one conv2d per depth tap k over the depth slices as a batch, summed,
 * y[n, d] = sum_k conv2d(x[n, d + k - pd], W[k]). The slices for tap k are a
 * contiguous run of the depth-padded input, so nothing is stacked or copied
 * beyond the depth padding.
 */
export class Conv3d implements Disposable {
  /** One filter [kh, kw, I, O] per depth tap; none where the stacked taps or Winograd's transformed filters replace them. */
  readonly filters?: tf.Tensor4D[];
  /** Each tap's filter shape [kh, kw, I, O]. */
  readonly filterShape: [number, number, number, number];
  readonly bias?: tf.Tensor1D;
  readonly kd: number;
  readonly padding: [number, number, number];

  constructor(p: ParamReader, prefix: string, opts: { padding?: number | [number, number, number]; bias?: boolean; norm?: BatchNorm } = {}) {
    const w = p.tensor(`${prefix}.weight`);
    if (w.rank !== 5) throw new Error(`${prefix}.weight: expected a 5-D Conv3d weight, got shape ${JSON.stringify(w.shape)}`);
    this.kd = w.shape[2] as number;
    // [O, I, kd, kh, kw] → [kd, kh, kw, I, O], split by tap.
    let filters = tf.tidy(() => tf.unstack(tf.transpose(w, [2, 3, 4, 1, 0]))) as tf.Tensor4D[];
    w.dispose();
    let bias = opts.bias ?? true ? (p.tensor(`${prefix}.bias`) as tf.Tensor1D) : undefined;
    if (opts.norm) ({ filters, bias } = foldNorm(filters, bias, opts.norm));
    this.filterShape = filters[0].shape;
    this.bias = bias;
    const pad = opts.padding ?? 0;
    this.padding = typeof pad === 'number' ? [pad, pad, pad] : pad;
    this.winograd = this.makeWinograd(() => hostFilters(p.floats(`${prefix}.weight`), w.shape, opts.norm?.scaleHost));
    // On webgpu the stacked taps cost two dispatches (one conv2d, one fused sum of the taps) for any depth.
    if (!this.winograd && (this.kd >= STACK_TAPS_MIN_DEPTH || (this.kd > 1 && gpuKernels()))) this.stacked = Conv3d.stackTaps(filters);
    // Only what apply reads is kept: the stacked taps, or the transformed filters, or else the taps.
    if (this.stacked || this.winograd) tf.dispose(filters);
    else this.filters = filters;
  }

  /** The taps side by side as output channels [kh, kw, I, kd·O]. */
  private static stackTaps(filters: tf.Tensor4D[]): tf.Tensor4D {
    // Kept: construction may run inside a caller's tidy, which must not dispose it.
    return tf.keep(tf.tidy(() => tf.concat(filters, 3)) as tf.Tensor4D);
  }

  /** Deep kernels (kd >= 5), and any depth on webgpu: all taps as output channels of one conv2d. */
  private stacked?: tf.Tensor4D;

  apply(x: tf.Tensor5D, activation: FusedActivation = 'linear'): tf.Tensor5D {
    if (this.stacked) return this.applyStacked(x, activation);
    if (this.winograd) {
      if (x.shape[0] === 1) return this.applyWinograd(x, activation);
      // Winograd runs per batch item.
      return tf.tidy(() => tf.concat(tf.split(x, x.shape[0]).map((xi) => this.applyWinograd(xi as tf.Tensor5D, activation)), 0) as tf.Tensor5D);
    }
    const filters = this.filters!;
    return tf.tidy(() => {
      const [n, d, h, w, c] = x.shape;
      const [pd, ph, pw] = this.padding;
      const dp = d + 2 * pd;
      const dOut = dp - this.kd + 1;
      // Pad depth only; H and W padding is the conv2d's own.
      const xp = padNdhwc(x, [pd, pd]);
      const flat = xp.reshape([n * dp, h, w, c]) as tf.Tensor4D;
      const padHW: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [ph, ph], [pw, pw], [0, 0]];
      let y: tf.Tensor4D | undefined;
      for (let k = 0; k < this.kd; k++) {
        // Depth slices k .. k + dOut - 1 of every batch item.
        const taps =
          n === 1
            ? this.kd === 1
              ? flat
              : tf.slice(flat, [k, 0, 0, 0], [dOut, h, w, c])
            : (tf.slice(xp, [0, k, 0, 0, 0], [n, dOut, h, w, c]).reshape([n * dOut, h, w, c]) as tf.Tensor4D);
        const last = k === this.kd - 1;
        // The bias and activation go into the last tap's kernel, after the sum so far.
        const yk = last
          ? tf.fused.conv2d({ x: taps, filter: filters[k], strides: 1, pad: ph || pw ? padHW : 'valid', bias: this.bias, activation: y ? 'linear' : activation })
          : tf.conv2d(taps, filters[k], 1, ph || pw ? padHW : 'valid');
        y = y ? (tf.add(y, yk) as tf.Tensor4D) : yk;
        if (last && this.kd > 1 && activation === 'relu') y = tf.relu(y);
      }
      return y!.reshape([n, dOut, y!.shape[1], y!.shape[2], y!.shape[3]]) as tf.Tensor5D;
    });
  }

  /** Whether apply runs Winograd F(2x2, 3x3) over H and W (batch 1). */
  get usesWinograd(): boolean {
    return this.winograd !== undefined;
  }

  /** Per depth tap, the Winograd F(2x2, 3x3) filters, where that path is faster (see Conv2d). */
  private winograd?: Winograd3x3;

  private makeWinograd(host: () => HostFilter[]): Winograd3x3 | undefined {
    const [kh, kw, inC, outC] = this.filterShape;
    const [, ph, pw] = this.padding;
    const eligible = this.kd < STACK_TAPS_MIN_DEPTH && kh === 3 && kw === 3 && ph === pw && ph <= 2;
    return eligible && useWinograd(inC, outC, this.kd) ? new Winograd3x3(host()) : undefined;
  }

  /**
   * Winograd F(2x2, 3x3) over H and W with the depth taps summed in the
   * transformed domain: every depth slice is transformed once, and tap k
   * reads depth slices k .. k + dOut - 1 of each V.
   * Batch 1 only (the pipeline's).
   */
  private applyWinograd(x: tf.Tensor5D, activation: FusedActivation): tf.Tensor5D {
    const wino = this.winograd!;
    return tf.tidy(() => {
      const [, d, h, w, c] = x.shape;
      const [pd, ph] = this.padding;
      const o = this.filterShape[3];
      const dp = d + 2 * pd;
      const dOut = dp - this.kd + 1;
      const xp = padNdhwc(x, [pd, pd]);
      // Rows of V run over (depth slice, tile row, tile column): slices k .. k + dOut - 1 are one run.
      const taps = (m: tf.Tensor2D, k: number, g: TileGeometry) => tf.slice(m, [k * g.th * g.tw, 0], [dOut * g.th * g.tw, m.shape[1]]);
      const [y] = wino.stream(
        xp.reshape([dp, h, w, c]) as tf.Tensor4D,
        ph,
        [ph, ph],
        1,
        (_, v, k, g) =>
          // Per position, each partial product freed as soon as it is summed: only the sum over the depth taps outlives it.
          tf.tidy(() => {
            let m: tf.Tensor2D | undefined;
            for (let t = 0; t < this.kd; t++) {
              // Slice whichever side of the GEMM is narrower.
              const p = tf.tidy(() => (c <= o ? tf.matMul(taps(v, t, g), wino.U[t][k]) : taps(tf.matMul(v, wino.U[t][k]), t, g)) as tf.Tensor2D);
              if (!m) m = p;
              else {
                const sum = tf.add(m, p) as tf.Tensor2D;
                tf.dispose([m, p]);
                m = sum;
              }
            }
            return this.bias && k === BIAS_POSITION ? (tf.add(m!, this.bias) as tf.Tensor2D) : m!;
          }),
        (g) => ({ ...g, batch: dOut }),
      );
      const out = activation === 'relu' ? tf.relu(y) : y;
      return out.reshape([1, dOut, out.shape[1], out.shape[2], o]) as tf.Tensor5D;
    });
  }

  /**
   * The kd taps as kd·O output channels of one conv2d over every depth slice,
   * then y[d] = sum_k Y[d + k][k-th channel group]. More multiplies (over the
   * padded depth) but a far wider GEMM: for the 7x7x7, 22-output mask conv of
   * the dense motion network it is about 1.5x faster on wasm, with equal sums.
   */
  private applyStacked(x: tf.Tensor5D, activation: FusedActivation): tf.Tensor5D {
    const stacked = this.stacked!;
    return tf.tidy(() => {
      const [n, d, h, w, c] = x.shape;
      const [pd, ph, pw] = this.padding;
      const o = this.filterShape[3];
      const dp = d + 2 * pd;
      const dOut = dp - this.kd + 1;
      const padHW: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [ph, ph], [pw, pw], [0, 0]];
      // Only the real depth slices: the zero padding's slices give zeros, which add nothing
      // (a quarter of the mask conv's multiplies at depth 16, padding 3). Sums are unchanged to the bit.
      const Y = tf.conv2d(x.reshape([n * d, h, w, c]) as tf.Tensor4D, stacked, 1, ph || pw ? padHW : 'valid');
      const [, ho, wo] = Y.shape;
      if (gpuKernels()) return conv3dTapSum(Y, this.bias, { n, depth: d, kd: this.kd, pd, relu: activation === 'relu' }).reshape([n, dOut, ho, wo, o]) as tf.Tensor5D;
      const items: tf.Tensor4D[] = [];
      for (let b = 0; b < n; b++) {
        let y: tf.Tensor4D | undefined;
        for (let k = 0; k < this.kd; k++) {
          // Output depths reading a real slice (j = out + k - pd in 0 .. d - 1) through tap k.
          const lo = Math.max(0, pd - k);
          const hi = Math.min(dOut, d + pd - k);
          if (hi <= lo) continue;
          let yk = tf.slice(Y, [b * d + lo + k - pd, 0, 0, k * o], [hi - lo, ho, wo, o]);
          if (lo > 0 || hi < dOut) yk = tf.pad(yk, [[lo, dOut - hi], [0, 0], [0, 0], [0, 0]]);
          y = y ? (tf.add(y, yk) as tf.Tensor4D) : yk;
        }
        y ??= tf.zeros([dOut, ho, wo, o]);
        if (this.bias) y = tf.add(y!, this.bias) as tf.Tensor4D;
        if (activation === 'relu') y = tf.relu(y!);
        items.push(y!);
      }
      const out = n === 1 ? items[0] : tf.concat(items, 0);
      return out.reshape([n, dOut, ho, wo, o]) as tf.Tensor5D;
    });
  }

  dispose(): void {
    this.winograd?.dispose();
    this.stacked?.dispose();
    tf.dispose(this.filters ?? []);
    this.bias?.dispose();
  }
}

/** BatchNorm (2-D or 3-D) in eval mode on the last axis: y = x * scale + shift. */
export class BatchNorm implements Disposable {
  readonly scale: tf.Tensor1D;
  readonly shift: tf.Tensor1D;
  /** scale on the host (for filters folded on the host). */
  readonly scaleHost: Float32Array;

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
    this.scaleHost = scale;
    this.scale = tf.tensor1d(scale);
    this.shift = tf.tensor1d(shift);
  }

  apply<T extends tf.Tensor>(x: T): T {
    // On rows [-1, C]: a broadcast over a rank-2 tensor (webgpu's broadcasting kernels do not compile for rank 5).
    return tf.tidy(() => tf.add(tf.mul(x.reshape([-1, this.scale.shape[0]]), this.scale), this.shift).reshape(x.shape)) as T;
  }

  dispose(): void {
    this.scale.dispose();
    this.shift.dispose();
  }
}

/**
 * A torch convolution weight [O, I, kh, kw] or [O, I, kd, kh, kw] (host
 * values) as tfjs filters [kh, kw, I, O] on the host, one per depth tap,
 * each output channel times `scale` where given: the values of the
 * device-side filters (transposed, then folded as foldNorm does, one float32
 * product), for transforms that read filters on the host.
 */
export function hostFilters(w: Float32Array, shape: readonly number[], scale?: Float32Array): HostFilter[] {
  const [o, i] = shape;
  const [kd, kh, kw] = shape.length === 5 ? shape.slice(2) : [1, ...shape.slice(2)];
  return Array.from({ length: kd }, (_, z) => {
    const data = new Float32Array(kh * kw * i * o);
    for (let oc = 0; oc < o; oc++)
      for (let ic = 0; ic < i; ic++)
        for (let y = 0; y < kh; y++)
          for (let x = 0; x < kw; x++) {
            const v = w[(((oc * i + ic) * kd + z) * kh + y) * kw + x];
            data[((y * kw + x) * i + ic) * o + oc] = scale ? Math.fround(v * scale[oc]) : v;
          }
    return { data, shape: [kh, kw, i, o] as [number, number, number, number] };
  });
}

/**
 * conv → batch norm as one convolution:
 * BN(W * x + b) = (W · scale) * x + (b · scale + shift), scale per output
 * channel. The results differ from the unfolded pair by float32 rounding only.
 * Disposes the given filters, bias and norm.
 */
function foldNorm(filters: tf.Tensor4D[], bias: tf.Tensor1D | undefined, bn: BatchNorm): { filters: tf.Tensor4D[]; bias: tf.Tensor1D } {
  const folded = {
    filters: filters.map((f) => tf.tidy(() => tf.mul(f, bn.scale) as tf.Tensor4D)),
    bias: tf.tidy(() => (bias ? tf.add(tf.mul(bias, bn.scale), bn.shift) : bn.shift.clone()) as tf.Tensor1D),
  };
  tf.dispose(filters);
  bias?.dispose();
  bn.dispose();
  return folded;
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
