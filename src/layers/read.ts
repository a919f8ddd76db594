/**
 * Reading several tensors back to the host in one transfer: on a GPU
 * backend every read waits for the device and maps a buffer, so the small
 * tensors a step needs on the host are joined on the device and read once.
 */
import * as tf from '@tensorflow/tfjs';

/** The float32 values of each tensor, read with one download. The tensors are left to the caller. */
export async function readTogether(tensors: tf.Tensor[]): Promise<Float32Array[]> {
  if (tensors.length === 1) return [Float32Array.from((await tensors[0].data()) as Float32Array)];
  const joined = tf.tidy(() => tf.concat(tensors.map((t) => tf.cast(t, 'float32').reshape([-1]))));
  let all: Float32Array;
  try {
    all = (await joined.data()) as Float32Array;
  } finally {
    joined.dispose();
  }
  const out: Float32Array[] = [];
  let at = 0;
  for (const t of tensors) {
    out.push(all.slice(at, at + t.size));
    at += t.size;
  }
  return out;
}
