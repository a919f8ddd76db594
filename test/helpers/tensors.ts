/** Comparing numbers: host arrays, host tensors (bitwise) and tfjs tensors. */
import * as tf from '@tensorflow/tfjs';
import type { HostTensor } from '../../src/formats/host_tensor.js';

/** max |a_i − b_i| of two host arrays; Infinity when their lengths differ. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** mean |a_i − b_i| of two byte arrays of the same length. */
export function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

/** Two host tensors with the same dtype, shape and bytes. */
export function sameBits(a: HostTensor | undefined, b: HostTensor): boolean {
  if (!a || a.dtype !== b.dtype || a.shape.join() !== b.shape.join()) return false;
  return Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));
}

/**
 * The first value of a tensor made by `fn` (in a tidy), read asynchronously:
 * GPU backends (webgpu in Node) have no synchronous read.
 */
export async function readScalar(fn: () => tf.Tensor): Promise<number> {
  const t = tf.tidy(fn);
  try {
    return (await t.data())[0];
  } finally {
    t.dispose();
  }
}

/** Max |a - b| over two tensors of the same shape. */
export async function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  if (a.shape.join() !== b.shape.join()) throw new Error(`shape mismatch: ${JSON.stringify(a.shape)} vs ${JSON.stringify(b.shape)}`);
  return readScalar(() => tf.max(tf.abs(tf.sub(tf.cast(a, 'float32'), tf.cast(b, 'float32')))));
}

/** Max |t| of a tensor. */
export function maxAbs(t: tf.Tensor): Promise<number> {
  return readScalar(() => tf.max(tf.abs(t)));
}
