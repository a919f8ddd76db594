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
import { gpuAdapterInfo, isSoftwareAdapter } from '../backend.js';
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

/** Where a Winograd pass reads and writes: tiles down and across, and the output size. */
export interface TileGeometry {
  /** Images (or depth slices) the tile rows run over. */
  readonly batch: number;
  /** Tiles down and across: ceil(outH / 2), ceil(outW / 2). */
  readonly th: number;
  readonly tw: number;
  /** Output height and width of the convolution. */
  readonly outH: number;
  readonly outW: number;
}

/** Interleave two equal tensors [n, ...rest] along a new axis after the first: [n, 2, ...rest], as [n, 2·size(rest)]. */
function interleave(a: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  const n = a.shape[0];
  const inner = a.size / n;
  // One contiguous concat and a rank-3 transpose: both fast on wasm, unlike concat along an inner axis.
  return tf.tidy(() => tf.transpose(tf.concat([a.reshape([1, n, inner]), b.reshape([1, n, inner])], 0), [1, 0, 2]).reshape([n, 2 * inner]) as tf.Tensor2D);
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
  readonly outC: number;
  /** Row i of Bᵀ as depthwise kernels, down [4, 1, I, 1] and across [1, 4, I, 1]. */
  private readonly down: tf.Tensor4D[];
  private readonly across: tf.Tensor4D[];

  /** From tfjs filters [3, 3, I, O], one per depth tap. The tensors made are kept (construction may run inside a caller's tidy). */
  constructor(filters: (tf.Tensor4D | HostFilter)[]) {
    this.inC = filters[0].shape[2];
    this.outC = filters[0].shape[3];
    this.U = filters.map((f) => winogradFilter(f).map((u) => tf.keep(u)));
    const c = this.inC;
    const kernel = (row: number[], shape: [number, number, number, number]) =>
      tf.keep(tf.tensor4d(Float32Array.from({ length: 4 * c }, (_, t) => row[Math.floor(t / c)]), shape));
    this.down = B_T.map((row) => kernel(row, [4, 1, c, 1]));
    this.across = B_T.map((row) => kernel(row, [1, 4, c, 1]));
  }

  /**
   * The convolution(s) of x, zero-padded by `pad` on each side as PyTorch's
   * Conv2d(padding=pad) (rows: `padRows` above and below, for a band of a
   * taller input), streamed through the transformed domain one row i of Bᵀ
   * at a time: V_k = (Bᵀ d B)_k for k = 4i .. 4i + 3, then for each output o
   * its products `product(o, V_k, k, g)` ([rows, O], rows as V's unless the
   * product says otherwise through `outGeometry`; g is V's tile geometry),
   * folded at once into Aᵀ M A.
   * Only four V and four M are alive at a time, never all sixteen.
   *
   * Each row of Bᵀ is a 4-tap depthwise convolution at stride 2, down and
   * then across: no slices (each copies its whole input on wasm), and the
   * products are exact (weights 0 and ±1), so V equals the adds of the
   * textbook form. The sums are taken in the textbook order, so results are
   * the same to the bit as transforming all sixteen first.
   */
  stream(
    x: tf.Tensor4D,
    pad: number,
    padRows: [number, number],
    outputs: number,
    product: (o: number, V: tf.Tensor2D, k: number, g: TileGeometry) => tf.Tensor2D,
    outGeometry: (g: TileGeometry) => TileGeometry = (g) => g,
  ): tf.Tensor4D[] {
    const [batch, h, w, c] = x.shape;
    if (c !== this.inC) throw new Error(`Winograd3x3: input has ${c} channels, the filters ${this.inC}`);
    const [top, bottom] = padRows;
    const outH = h + top + bottom - 2;
    const outW = w + 2 * pad - 2;
    const th = Math.ceil(outH / 2);
    const tw = Math.ceil(outW / 2);
    const geometry: TileGeometry = { batch, th, tw, outH, outW };
    const sums = Array.from({ length: outputs }, () => new WinogradSums());
    try {
      const xp = tf.pad(x, [
        [0, 0],
        [top, 2 * th + 2 - h - top],
        [pad, 2 * tw + 2 - w - pad],
        [0, 0],
      ]) as tf.Tensor4D;
      try {
        this.down.forEach((kd, i) => {
          const V = tf.tidy(() => {
            const rows = tf.depthwiseConv2d(xp, kd, [2, 1], 'valid'); // [batch, th, wp, c]
            return this.across.map((ka) => tf.depthwiseConv2d(rows, ka, [1, 2], 'valid').reshape([batch * th * tw, c]) as tf.Tensor2D);
          });
          try {
            V.forEach((v, j) => sums.forEach((s, o) => s.add(i, j, product(o, v, 4 * i + j, geometry))));
          } finally {
            tf.dispose(V);
          }
        });
      } finally {
        xp.dispose();
      }
      const g = outGeometry(geometry);
      return sums.map((s) => s.output(g));
    } finally {
      for (const s of sums) s.dispose();
    }
  }

  dispose(): void {
    tf.dispose([...this.U.flat(), ...this.down, ...this.across]);
  }
}

/**
 * Aᵀ M A folded in as the products M_k (k = 4i + j) arrive row by row, with
 * Aᵀ = [1 1 1 0; 0 1 -1 -1]: s[j][0] = M_j + M_4+j + M_8+j and
 * s[j][1] = M_4+j - M_8+j - M_12+j, summed in that order; then the same
 * across the tile by `output`. Each M is consumed (disposed) when added.
 */
class WinogradSums {
  /** s[j][a], a = output row in the tile. */
  private s: (tf.Tensor2D | undefined)[][] = [0, 1, 2, 3].map(() => [undefined, undefined]);

  add(i: number, j: number, m: tf.Tensor2D): void {
    const s = this.s[j];
    const swap = (a: number, t: tf.Tensor2D) => {
      s[a]?.dispose();
      s[a] = t;
    };
    if (i === 0) s[0] = m;
    else if (i === 1) {
      swap(0, tf.add(s[0]!, m));
      s[1] = m;
    } else if (i === 2) {
      swap(0, tf.add(s[0]!, m));
      swap(1, tf.sub(s[1]!, m));
      m.dispose();
    } else {
      swap(1, tf.sub(s[1]!, m));
      m.dispose();
    }
  }

  /** NHWC [batch, outH, outW, O], by output row in the tile, so that each row's sums go before the next. */
  output(g: TileGeometry): tf.Tensor4D {
    const { batch, th, tw, outH, outW } = g;
    const o = this.s[0][0]!.shape[1];
    const rows = [0, 1].map((a) => {
      const r = tf.tidy(() => {
        const [s0, s1, s2, s3] = this.s.map((sj) => sj[a]!);
        const y0 = tf.add(tf.add(s0, s1), s2);
        const y1 = tf.sub(tf.sub(s1, s2), s3);
        return interleave(y0, y1).reshape([batch * th, 2 * tw * o]); // (item, ty, tx, b): one output row
      });
      for (const sj of this.s) {
        sj[a]?.dispose();
        sj[a] = undefined;
      }
      return r;
    });
    const y = tf.tidy(() => interleave(rows[0], rows[1]).reshape([batch, 2 * th, 2 * tw, o]) as tf.Tensor4D);
    tf.dispose(rows);
    if (outH === 2 * th && outW === 2 * tw) return y;
    const cut = tf.slice(y, [0, 0, 0, 0], [batch, outH, outW, o]) as tf.Tensor4D;
    y.dispose();
    return cut;
  }

  dispose(): void {
    tf.dispose(this.s.flat().filter((t): t is tf.Tensor2D => t !== undefined));
  }
}

/** Index of the transformed position whose product reaches all four outputs with weight 1 (i = j = 1): the bias goes there. */
export const BIAS_POSITION = 5;

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
  return backend === 'webgpu' && isSoftwareAdapter(gpuAdapterInfo() ?? {});
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
