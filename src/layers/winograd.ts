/**
 * Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms
 * for Convolutional Neural Networks", 2016) for stride-1 3×3 convolutions on
 * NHWC, built from ops every backend has: depthwise convolutions, adds,
 * 2-D matMuls and rank-3 transposes.
 *
 * Each 2×2 block of outputs is read from a 4×4 input tile d; with the tile in
 * the transformed domain V = Bᵀ d B and the filter as U = G g Gᵀ, the 16
 * products V_k·U_k (one GEMM [tiles, I] × [I, O] per k) replace the 36
 * multiplies per channel pair of the direct 3×3 convolution, 2.25x fewer, and
 * Y = Aᵀ M A gives the outputs back. Results differ from the direct
 * convolution by float32 rounding only (a few 1e-6 relative).
 *
 * The transforms are memory-bound passes, so this pays only when channels
 * are wide; `winogradPays` is the cost model, from timings of tfjs's wasm
 * backend. The transformed input can be shared by several convolutions
 * reading the same tensor (and by the depth taps of a 3-D convolution).
 */
import * as tf from '@tensorflow/tfjs';
import { gpuAdapterInfo } from '../backend.js';
import type { Disposable } from './core.js';

/** Bᵀ of F(2×2, 3×3): row i of the input transform. */
const B_T = [
  [1, 0, -1, 0],
  [0, 1, 1, 0],
  [0, -1, 1, 0],
  [0, 1, 0, -1],
];

/** A tfjs filter [kh, kw, I, O] on the host. */
export interface HostFilter {
  data: Float32Array;
  shape: [number, number, number, number];
}

/**
 * The 16 transformed filters U_k = (G g Gᵀ)_k, k = 4i + j, each [I, O], from
 * a tfjs filter [3, 3, I, O], with G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]. One
 * pass over the filter, in float64, rounded once. The filter is read on the
 * host: pass a HostFilter where the tensor's values are on a GPU (webgpu
 * has no synchronous read in Node).
 */
export function winogradFilter(filter: tf.Tensor4D | HostFilter): tf.Tensor2D[] {
  const [kh, kw, inC, outC] = filter.shape;
  if (kh !== 3 || kw !== 3) throw new Error(`winogradFilter: a 3x3 filter is needed, got ${kh}x${kw}`);
  const g = filter instanceof tf.Tensor ? (filter.dataSync() as Float32Array) : filter.data;
  const size = inC * outC;
  const u = Array.from({ length: 16 }, () => new Float32Array(size));
  const r = new Float64Array(12); // G g: [4 rows][3 columns]
  for (let t = 0; t < size; t++) {
    for (let b = 0; b < 3; b++) {
      const g0 = g[b * size + t];
      const g1 = g[(3 + b) * size + t];
      const g2 = g[(6 + b) * size + t];
      r[b] = g0;
      r[3 + b] = 0.5 * (g0 + g1 + g2);
      r[6 + b] = 0.5 * (g0 - g1 + g2);
      r[9 + b] = g2;
    }
    for (let i = 0; i < 4; i++) {
      const r0 = r[3 * i];
      const r1 = r[3 * i + 1];
      const r2 = r[3 * i + 2];
      u[4 * i][t] = r0;
      u[4 * i + 1][t] = 0.5 * (r0 + r1 + r2);
      u[4 * i + 2][t] = 0.5 * (r0 - r1 + r2);
      u[4 * i + 3][t] = r2;
    }
  }
  return u.map((v) => tf.tensor2d(v, [inC, outC]));
}

/** The input of one or more convolutions in the transformed domain. */
export interface WinogradTiles {
  /** V_k, k = 4i + j (i down, j across the tile): one row per tile (batch item, tile row, tile column), one column per channel. */
  readonly V: tf.Tensor2D[];
  readonly batch: number;
  /** Tiles down and across: ceil(outH / 2), ceil(outW / 2). */
  readonly th: number;
  readonly tw: number;
  /** Output height and width of the convolution. */
  readonly outH: number;
  readonly outW: number;
}

/** Aᵀ m on four rows (or columns): Aᵀ = [1 1 1 0; 0 1 -1 -1]. */
function outputRows(m0: tf.Tensor, m1: tf.Tensor, m2: tf.Tensor, m3: tf.Tensor): tf.Tensor[] {
  return [tf.add(tf.add(m0, m1), m2), tf.sub(tf.sub(m1, m2), m3)];
}

/** Interleave two equal tensors [n, ...rest] along a new axis after the first: [n, 2, ...rest], as [n, 2·size(rest)]. */
function interleave(a: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  const n = a.shape[0];
  const inner = a.size / n;
  // One contiguous concat and a rank-3 transpose: both fast on wasm, unlike concat along an inner axis.
  return tf.transpose(tf.concat([a.reshape([1, n, inner]), b.reshape([1, n, inner])], 0), [1, 0, 2]).reshape([n, 2 * inner]) as tf.Tensor2D;
}

/**
 * A 3×3 convolution (or the 3×3 spatial taps of a 3-D one) in Winograd form:
 * the transformed filters, one set per depth tap, and the depthwise kernels
 * of the input transform for its input width.
 */
export class Winograd3x3 implements Disposable {
  /** U[tap][k], each [I, O]. */
  readonly U: tf.Tensor2D[][];
  readonly inC: number;
  /** Row i of Bᵀ as depthwise kernels, down [4, 1, I, 1] and across [1, 4, I, 1]. */
  private readonly down: tf.Tensor4D[];
  private readonly across: tf.Tensor4D[];

  /** From tfjs filters [3, 3, I, O], one per depth tap. The tensors made are kept (construction may run inside a caller's tidy). */
  constructor(filters: (tf.Tensor4D | HostFilter)[]) {
    this.inC = filters[0].shape[2];
    this.U = filters.map((f) => winogradFilter(f).map((u) => tf.keep(u)));
    const c = this.inC;
    const kernel = (row: number[], shape: [number, number, number, number]) =>
      tf.keep(tf.tensor4d(Float32Array.from({ length: 4 * c }, (_, t) => row[Math.floor(t / c)]), shape));
    this.down = B_T.map((row) => kernel(row, [4, 1, c, 1]));
    this.across = B_T.map((row) => kernel(row, [1, 4, c, 1]));
  }

  /**
   * Bᵀ d B for every 4×4 tile (stride 2) of x zero-padded by `pad` on each
   * side, as PyTorch's Conv2d(padding=pad) (rows: `padRows` above and
   * below, for a band of a taller input). Each row of Bᵀ is a 4-tap
   * depthwise convolution at stride 2, down and then across: no slices
   * (each copies its whole input on wasm), and the products are exact
   * (weights 0 and ±1), so V equals the adds of the textbook form.
   */
  tiles(x: tf.Tensor4D, pad: number, padRows: [number, number] = [pad, pad]): WinogradTiles {
    const [batch, h, w, c] = x.shape;
    if (c !== this.inC) throw new Error(`Winograd3x3: input has ${c} channels, the filters ${this.inC}`);
    const [top, bottom] = padRows;
    const outH = h + top + bottom - 2;
    const outW = w + 2 * pad - 2;
    const th = Math.ceil(outH / 2);
    const tw = Math.ceil(outW / 2);
    const V = tf.tidy(() => {
      const xp = tf.pad(x, [
        [0, 0],
        [top, 2 * th + 2 - h - top],
        [pad, 2 * tw + 2 - w - pad],
        [0, 0],
      ]) as tf.Tensor4D;
      // One row of Bᵀ at a time, so that only one intermediate [batch, th, wp, c] is alive.
      return this.down.flatMap((kd) =>
        tf.tidy(() => {
          const rows = tf.depthwiseConv2d(xp, kd, [2, 1], 'valid'); // [batch, th, wp, c]
          return this.across.map((ka) => tf.depthwiseConv2d(rows, ka, [1, 2], 'valid').reshape([batch * th * tw, c]) as tf.Tensor2D);
        }),
      );
    });
    return { V, batch, th, tw, outH, outW };
  }

  dispose(): void {
    tf.dispose([...this.U.flat(), ...this.down, ...this.across]);
  }
}

/** Free the transformed input. */
export function disposeTiles(tiles: WinogradTiles): void {
  tf.dispose(tiles.V);
}

/** Index of the transformed position whose product reaches all four outputs with weight 1 (i = j = 1): the bias goes there. */
export const BIAS_POSITION = 5;

/**
 * Aᵀ M A back to NHWC [batch, outH, outW, O] from the 16 products M_k
 * [tiles, O] (rows in the order of WinogradTiles.V); the caller's bias was
 * already added to M_5.
 */
export function winogradOutput(M: tf.Tensor2D[], tiles: Pick<WinogradTiles, 'batch' | 'th' | 'tw' | 'outH' | 'outW'>): tf.Tensor4D {
  const { batch, th, tw, outH, outW } = tiles;
  const o = M[0].shape[1];
  return tf.tidy(() => {
    const s = [0, 1, 2, 3].map((j) => outputRows(M[j], M[4 + j], M[8 + j], M[12 + j])); // s[j][a], a = output row in the tile
    const rows = [0, 1].map((a) =>
      // Per output row, so that its intermediates go before the next.
      tf.tidy(() => {
        const [y0, y1] = outputRows(s[0][a], s[1][a], s[2][a], s[3][a]); // output columns b = 0, 1
        return interleave(y0, y1).reshape([batch * th, 2 * tw * o]); // (item, ty, tx, b): one output row
      }),
    );
    tf.dispose(s.flat());
    const y = interleave(rows[0], rows[1]).reshape([batch, 2 * th, 2 * tw, o]) as tf.Tensor4D;
    return outH === 2 * th && outW === 2 * tw ? y : (tf.slice(y, [0, 0, 0, 0], [batch, outH, outW, o]) as tf.Tensor4D);
  });
}

/** One GEMM per transformed position: M_k = V_k · U_k (+ bias at the bias position). */
export function winogradProducts(V: tf.Tensor2D[], U: tf.Tensor2D[], bias?: tf.Tensor1D): tf.Tensor2D[] {
  return V.map((v, k) => (bias && k === BIAS_POSITION ? tf.fused.matMul({ a: v, b: U[k], bias }) : tf.matMul(v, U[k])) as tf.Tensor2D);
}

/** The convolution of transformed tiles with transformed filters U (+ bias, then the activation). */
export function winogradConv(tiles: WinogradTiles, U: tf.Tensor2D[], bias?: tf.Tensor1D, activation: 'linear' | 'relu' = 'linear'): tf.Tensor4D {
  return tf.tidy(() => {
    const y = winogradOutput(winogradProducts(tiles.V, U, bias), tiles);
    return activation === 'relu' ? tf.relu(y) : y;
  });
}

/** Backends the cost model was measured on; elsewhere (GPU, native) the direct kernels are used. */
const WINOGRAD_BACKENDS = new Set(['wasm', 'cpu']);

/**
 * Whether the backend in use takes Winograd where the cost model says so:
 * wasm and cpu, and webgpu on a software adapter (Mesa's lavapipe,
 * SwiftShader), where the GPU kernels run on the CPU: there,
 * scripts/bench-conv.ts measured Winograd 1.3x (3x3x3, 32 -> 32 at
 * 16x64x64), 2.4x (3x3x3, 128 -> 64 at 16x32x32) and 3.4x (256 -> 128 at
 * 128x128) faster than tfjs-webgpu's conv2d. On hardware GPUs (not measured
 * here) the direct kernels stay.
 */
function winogradBackend(): boolean {
  const backend = tf.getBackend();
  if (WINOGRAD_BACKENDS.has(backend)) return true;
  return backend === 'webgpu' && gpuAdapterInfo()?.isFallbackAdapter === true;
}

/**
 * Whether a 3x3 convolution of I → O channels (with `taps` depth taps) is
 * built in Winograd form on the current backend: by the cost model on wasm,
 * cpu and webgpu on a software adapter. `LIVEPORTRAIT_WINOGRAD=0` turns it off, `=1` takes it for every
 * eligible convolution on any backend (for tests and comparisons).
 */
export function useWinograd(inC: number, outC: number, taps = 1): boolean {
  const env = typeof process !== 'undefined' ? process.env?.LIVEPORTRAIT_WINOGRAD : undefined;
  if (env === '0') return false;
  if (env === '1') return true;
  return winogradBackend() && winogradPays(inC, outC, taps);
}

/*
 * Cost model, per output pixel, from single-thread timings of tfjs-wasm 4.22
 * on our 2-core x86-64 machine: the direct convolution runs at about
 * 15 GMAC/s (9·I·O MACs), the 16 GEMMs at about 14.5 GMAC/s (4·I·O), and
 * the two transforms cost about 8 ns per channel (input and output). So
 * Winograd pays when taps·I·O / (I + O) is above about 25 (64 → 64 channels
 * at 256² measured 1.3x faster, 32 → 48 at 64² 0.95x). Where several
 * convolutions share an input (Conv2d.applyShared) it is transformed once.
 */
const DIRECT_NS_PER_MAC = 1 / 15;
const GEMM_NS_PER_MAC = 1 / 14.5;
const TRANSFORM_NS_PER_CHANNEL = 8;

/**
 * Whether F(2×2, 3×3) beats the direct kernel for `taps` 3×3 filters of
 * I → O channels summed into one output (3 for a 3×3×3 convolution).
 */
export function winogradPays(inC: number, outC: number, taps = 1): boolean {
  const direct = 9 * taps * inC * outC * DIRECT_NS_PER_MAC;
  const winograd = 4 * taps * inC * outC * GEMM_NS_PER_MAC + TRANSFORM_NS_PER_CHANNEL * (inC + outC);
  return winograd < direct;
}
