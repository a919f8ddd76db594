/**
 * Coordinate grids and Gaussian keypoint heatmaps of the first-order-motion
 * family (the reference's make_coordinate_grid and kp2gaussian), channel-last.
 */
import * as tf from '@tensorflow/tfjs';

/** The normalised coordinate 2 * (i / (n - 1)) - 1 of index i, in float32 as PyTorch computes it. */
function axisCoord(i: number, n: number): number {
  return Math.fround(2 * Math.fround(i / (n - 1)) - 1);
}

/** The n normalised coordinates of one axis, corners on -1 and 1. */
export function axisCoords(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => axisCoord(i, n));
}

/**
 * Identity grid [D, H, W, 3]: at (z, y, x) the point (x, y, z) normalised to
 * [-1, 1] with the corners on -1 and 1 (x to the right, y down, z inwards).
 */
export function makeCoordinateGrid(d: number, h: number, w: number): tf.Tensor4D {
  const [xs, ys, zs] = [axisCoords(w), axisCoords(h), axisCoords(d)];
  const data = new Float32Array(d * h * w * 3);
  let o = 0;
  for (let z = 0; z < d; z++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        data[o++] = xs[x];
        data[o++] = ys[y];
        data[o++] = zs[z];
      }
  return tf.tensor4d(data, [d, h, w, 3]);
}

/**
 * Gaussian heatmaps of keypoints kp [N, K, 3] (x, y, z) on the coordinate grid
 * of a [D, H, W] volume → [N, D, H, W, K]: exp(-0.5 * |grid - kp|^2 / variance).
 *
 * The squared distance is separable, so the per-axis squares are computed on
 * the axes alone ([N, W, K], [N, H, K], [N, D, K]) and summed by broadcasting,
 * in the reference's order (dx² + dy²) + dz²: the same float32 values as on
 * the full grid.
 */
export function kp2gaussian(kp: tf.Tensor3D, size: readonly [number, number, number], variance: number): tf.Tensor5D {
  return tf.tidy(() => {
    const [n, k] = kp.shape;
    const [d, h, w] = size;
    const [kx, ky, kz] = tf.split(kp, 3, 2).map((t) => t.reshape([n, 1, k]));
    const sq = (coords: Float32Array, kc: tf.Tensor) => tf.square(tf.sub(tf.tensor3d(coords, [1, coords.length, 1]), kc));
    const dx2 = sq(axisCoords(w), kx).reshape([n, 1, 1, w, k]);
    const dy2 = sq(axisCoords(h), ky).reshape([n, 1, h, 1, k]);
    const dz2 = sq(axisCoords(d), kz).reshape([n, d, 1, 1, k]);
    const dist2 = tf.add(tf.add(dx2, dy2), dz2);
    return tf.exp(tf.div(tf.mul(dist2, -0.5), variance)) as tf.Tensor5D;
  });
}
