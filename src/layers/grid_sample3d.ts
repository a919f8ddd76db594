/**
 * PyTorch's 3-D F.grid_sample (trilinear, padding_mode='zeros',
 * align_corners=False) on channel-last tensors, built from gather and
 * elementwise arithmetic only, so it runs on every tfjs backend.
 */
import * as tf from '@tensorflow/tfjs';
import { padNdhwc } from './ndhwc.js';
import { gpuKernels, gridSample3dGpu } from './webgpu_kernels.js';

/** Sample points per gather: bounds the [points, 8, C] temporaries to about 64 MB. */
const CHUNK_ELEMENTS = 1 << 24;

/** Per-axis corner weights (zero outside the volume) and the corner-0 coordinate in the zero-padded volume. */
interface AxisTaps {
  w0: tf.Tensor1D;
  w1: tf.Tensor1D;
  /** floor(i) + 1 clamped to [0, size]: the padded coordinate of the lower corner, int32. */
  padded: tf.Tensor1D;
}

/**
 * One axis, as PyTorch with align_corners=False: i = ((g + 1) * size - 1) / 2,
 * corners i0 = floor(i) and i0 + 1 with weights (i0 + 1 - i) and (i - i0); a
 * corner outside [0, size - 1] gets weight 0. (Scalar operands only: the
 * wasm backend's broadcasting comparisons are slow.)
 */
function axisTaps(g: tf.Tensor1D, size: number): AxisTaps {
  const coord = tf.div(tf.sub(tf.mul(tf.add(g, 1), size), 1), 2);
  const f0 = tf.floor(coord);
  const f1 = tf.add(f0, 1);
  const inside = (f: tf.Tensor) => tf.cast(tf.logicalAnd(tf.greaterEqual(f, 0), tf.lessEqual(f, size - 1)), 'float32');
  return {
    w0: tf.mul(tf.sub(f1, coord), inside(f0)) as tf.Tensor1D,
    w1: tf.mul(tf.sub(coord, f0), inside(f1)) as tf.Tensor1D,
    padded: tf.cast(tf.clipByValue(f1, 0, size), 'int32') as tf.Tensor1D,
  };
}

/**
 * Corner rows and weights of points [3, P] (rows x, y, z in [-1, 1]) in a
 * volume zero-padded by one voxel on every side and flattened to rows:
 * index [P, 8] int32 and weight [P, 8], corners in PyTorch's order (z, y, x
 * from outermost to innermost).
 *
 * The lower corner (z0, y0, x0) of a point, z0 in -1..D-1 etc., is padded
 * row ((z0+1)(H+2) + y0+1)(W+2) + x0+1, its 8 corners that row plus fixed
 * offsets; neighbours outside the volume read the zero padding (and points
 * farther out get weight 0 with clamped rows). Weights are (wx * wy) * wz.
 */
function cornerTaps(points: tf.Tensor2D, dims: [number, number, number]): { index: tf.Tensor2D; weight: tf.Tensor2D } {
  return tf.tidy(() => {
    const [d, h, w] = dims;
    const p = points.shape[1];
    const [gx, gy, gz] = tf.split(points, 3, 0).map((t) => t.reshape([p]) as tf.Tensor1D);
    const x = axisTaps(gx, w);
    const y = axisTaps(gy, h);
    const z = axisTaps(gz, d);
    const [hp, wp] = [h + 2, w + 2];
    const base = tf.add(tf.mul(tf.add(tf.mul(z.padded, tf.scalar(hp, 'int32')), y.padded), tf.scalar(wp, 'int32')), x.padded);
    const index: tf.Tensor[] = [];
    const weight: tf.Tensor[] = [];
    for (let kz = 0; kz < 2; kz++)
      for (let ky = 0; ky < 2; ky++)
        for (let kx = 0; kx < 2; kx++) {
          index.push(tf.add(base, tf.scalar((kz * hp + ky) * wp + kx, 'int32')));
          weight.push(tf.mul(tf.mul(kx ? x.w1 : x.w0, ky ? y.w1 : y.w0), kz ? z.w1 : z.w0));
        }
    // Stacked on axis 0 then transposed: both fast on every backend.
    return { index: tf.transpose(tf.stack(index, 0)) as tf.Tensor2D, weight: tf.transpose(tf.stack(weight, 0)) as tf.Tensor2D };
  });
}

/** Sum over the 8 corners, in order, of weight [P, 8] x rows[index [P, 8]] → [P, C]. */
function blendCorners(rows: tf.Tensor2D, index: tf.Tensor2D, weight: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const p = index.shape[0];
    const values = tf.gatherND(rows, index.reshape([p, 8, 1])); // [P, 8, C]
    return tf.sum(tf.mul(values, weight.reshape([p, 8, 1])), 1) as tf.Tensor2D;
  });
}

/**
 * Trilinear sampling of `input` [N, D, H, W, C] at `grid` [N, Do, Ho, Wo, 3]
 * (last axis x, y, z in [-1, 1]: x indexes W, y H, z D) → [N, Do, Ho, Wo, C].
 * Points outside the volume read zeros, corner by corner, as in PyTorch.
 *
 * All 8 corners of a point come from one gatherND of C-channel rows of the
 * zero-padded volume; points go in chunks to bound memory.
 */
export function gridSample3d(input: tf.Tensor5D, grid: tf.Tensor5D): tf.Tensor5D {
  const [n, d, h, w, c] = input.shape;
  const [gn, dOut, hOut, wOut, three] = grid.shape;
  if (gn !== n || three !== 3) throw new Error(`gridSample3d: grid ${JSON.stringify(grid.shape)} does not fit input ${JSON.stringify(input.shape)}`);
  // On webgpu, one fused kernel (the same arithmetic, per output element) instead of some 70 dispatches a chunk.
  if (gpuKernels()) return gridSample3dGpu(input, grid);
  const count = dOut * hOut * wOut;
  const chunk = Math.max(1, Math.floor(CHUNK_ELEMENTS / (8 * c)));
  return tf.tidy(() => {
    const outs: tf.Tensor2D[] = [];
    // Slices only where needed: on wasm a slice reads its whole input.
    const item = (t: tf.Tensor5D, b: number) => (n === 1 ? t : tf.slice(t, [b, 0, 0, 0, 0], [1, ...t.shape.slice(1)]));
    for (let b = 0; b < n; b++) {
      const rows = padNdhwc(item(input, b) as tf.Tensor5D, [1, 1], [1, 1], [1, 1]).reshape([-1, c]) as tf.Tensor2D;
      const points = item(grid, b).reshape([count, 3]) as tf.Tensor2D;
      for (let start = 0; start < count; start += chunk) {
        const size = Math.min(chunk, count - start);
        outs.push(
          tf.tidy(() => {
            const part = size === count ? points : tf.slice(points, [start, 0], [size, 3]);
            const { index, weight } = cornerTaps(tf.transpose(part), [d, h, w]);
            return blendCorners(rows, index, weight);
          }),
        );
      }
      tf.dispose([rows, points]);
    }
    const out = outs.length === 1 ? outs[0] : tf.concat(outs, 0);
    return out.reshape([n, dOut, hOut, wOut, c]) as tf.Tensor5D;
  });
}
