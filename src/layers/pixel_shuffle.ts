/**
 * nn.PixelShuffle on channel-last tensors.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * PixelShuffle(r) on NHWC: [N, H, W, C·r·r] → [N, H·r, W·r, C], with
 * PyTorch's channel order: out[n, h·r + i, w·r + j, c] = in[n, h, w, c·r² + i·r + j].
 * (tf.depthToSpace expects channel (i·r + j)·C + c, so the channels are
 * regrouped first.)
 */
export function pixelShuffle(x: tf.Tensor4D, r: number): tf.Tensor4D {
  const [n, h, w, cr2] = x.shape;
  if (cr2 % (r * r) !== 0) throw new Error(`pixelShuffle: ${cr2} channels are not a multiple of ${r * r}`);
  const c = cr2 / (r * r);
  if (r === 1) return x.clone();
  return tf.tidy(() => {
    const regrouped = tf.transpose(x.reshape([n, h, w, c, r * r]), [0, 1, 2, 4, 3]).reshape([n, h, w, cr2]) as tf.Tensor4D;
    return tf.depthToSpace(regrouped, r, 'NHWC');
  });
}
