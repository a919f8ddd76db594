/**
 * Rank-5 (NDHWC) helpers expressed through rank-4 ops: the webgpu backend's
 * pad kernel does not compile for rank 5 (its shader indexes a vec5), and
 * rank-4 kernels are the well-trodden ones on every backend.
 */
import * as tf from '@tensorflow/tfjs';

type Pair = [number, number];

/**
 * Zero padding of an NDHWC tensor, as tf.pad(x, [[0, 0], depth, height,
 * width, channels]), done by rank-4 pads: one pad for a single batch item
 * (or for depth and channels alone), else depth first, then height and width.
 */
export function padNdhwc(x: tf.Tensor5D, depth: Pair, height: Pair = [0, 0], width: Pair = [0, 0], channels: Pair = [0, 0]): tf.Tensor5D {
  const [n, d, h, w, c] = x.shape;
  const none = (p: Pair) => p[0] === 0 && p[1] === 0;
  if (none(depth) && none(height) && none(width) && none(channels)) return x;
  return tf.tidy(() => {
    const dOut = d + depth[0] + depth[1];
    const hOut = h + height[0] + height[1];
    const wOut = w + width[0] + width[1];
    const cOut = c + channels[0] + channels[1];
    if (n === 1) {
      const y = tf.pad(x.reshape([d, h, w, c]), [depth, height, width, channels]);
      return y.reshape([1, dOut, hOut, wOut, cOut]) as tf.Tensor5D;
    }
    // Depth and channels: H and W merged.
    let y: tf.Tensor = tf.pad(x.reshape([n, d, h * w, c]), [[0, 0], depth, [0, 0], channels]);
    if (!none(height) || !none(width)) y = tf.pad(y.reshape([n * dOut, h, w, cOut]), [[0, 0], height, width, [0, 0]]);
    return y.reshape([n, dOut, hOut, wOut, cOut]) as tf.Tensor5D;
  });
}
