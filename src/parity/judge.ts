/**
 * The numbers of a parity check: ours against a stored tensor (max abs
 * error, error relative to the reference's scale), judged by the tolerance
 * table, as one report row. `liveportrait parity` and the test suite both
 * judge through here.
 */
import * as tf from '@tensorflow/tfjs';
import { type HostTensor, toFloat32 } from '../formats/host_tensor.js';
import { bound, describeTolerance, type Tolerance, toleranceFor } from './tolerances.js';

export type RowStatus = 'pass' | 'fail' | 'not compared';

/** One output or tap of the dump. */
export interface ParityRow {
  /** The fixture file (module) stem. */
  module: string;
  tensor: string;
  /** The reference tensor's shape (as stored: taps may be strided). */
  shape: number[];
  status: RowStatus;
  /** max |ours − reference| (u8 frames: the largest difference). */
  maxAbs?: number;
  /** maxAbs / max |reference|. */
  maxRel?: number;
  tolerance?: string;
  /** Why not compared, or what failed beyond the numbers. */
  note?: string;
}

export interface TensorErrors {
  maxAbs: number;
  maxRel: number;
  /** max |reference|. */
  scale: number;
  shapeError?: string;
}

/**
 * x[::s0, ::s1, ...] for any rank, as rank-4-or-less strided slices per
 * leading item where the rank is 5 (webgpu's rank-5 strided slice does not
 * compile).
 */
export function strided(x: tf.Tensor, strides: number[]): tf.Tensor {
  if (x.rank < 5) return tf.stridedSlice(x, x.shape.map(() => 0), x.shape, strides);
  const items = tf.unstack(x).filter((_, i) => i % strides[0] === 0);
  return tf.stack(items.map((t) => strided(t, strides.slice(1))));
}

/** Max abs and relative error of ours (PyTorch layout) against a stored tensor, optionally strided first. */
export async function tensorErrors(ours: tf.Tensor, ref: HostTensor, strides?: number[]): Promise<TensorErrors> {
  const a = tf.tidy(() => (strides ? strided(ours, strides) : ours.clone()));
  try {
    if (a.shape.join() !== ref.shape.join()) return { maxAbs: NaN, maxRel: NaN, scale: NaN, shapeError: `shape ${JSON.stringify(a.shape)} here, ${JSON.stringify(ref.shape)} in the dump` };
    const x = await a.data();
    const y = toFloat32(ref);
    let maxAbs = 0;
    let scale = 0;
    let nan = false;
    for (let i = 0; i < y.length; i++) {
      const d = Math.abs(x[i] - y[i]);
      if (Number.isNaN(d)) nan = true;
      else if (d > maxAbs) maxAbs = d;
      const s = Math.abs(y[i]);
      if (s > scale) scale = s;
    }
    if (nan) maxAbs = NaN;
    return { maxAbs, maxRel: scale > 0 ? maxAbs / scale : maxAbs, scale };
  } finally {
    a.dispose();
  }
}

/** A row for errors `e` of `tensor` in `module` under `tol` (the table's unless given). */
export function judged(module: string, tensor: string, ref: HostTensor, e: TensorErrors, tol: Tolerance | undefined = toleranceFor(module, tensor)): ParityRow {
  const row: ParityRow = { module, tensor, shape: ref.shape, status: 'fail', maxAbs: e.maxAbs, maxRel: e.maxRel };
  if (e.shapeError) return { ...row, note: e.shapeError };
  if (!tol) return { ...row, note: 'no tolerance defined for this tensor (src/parity/tolerances.ts)' };
  row.tolerance = describeTolerance(tol);
  row.status = e.maxAbs <= bound(tol, e.scale) ? 'pass' : 'fail';
  return row;
}

/** Ours (PyTorch layout) against `ref`, strided first if given, judged by the table: one row. */
export async function checkTensor(module: string, tensor: string, ours: tf.Tensor, ref: HostTensor, strides?: number[]): Promise<ParityRow> {
  return judged(module, tensor, ref, await tensorErrors(ours, ref, strides));
}

/** u8 frames [T, H, W, C]: per frame, the share within ±tol.u8Within; pass if every frame reaches tol.share. */
export function compareFrames(module: string, tensor: string, frames: Uint8Array[], ref: HostTensor, tol: Tolerance | undefined = toleranceFor(module, tensor)): ParityRow {
  if (!tol || !('u8Within' in tol)) throw new Error(`${tensor}: frames need a u8 tolerance`);
  const want = ref.data as Uint8Array;
  const size = ref.shape.slice(1).reduce((a, b) => a * b, 1);
  let max = 0;
  let minShare = 1;
  if (frames.length !== ref.shape[0] || frames.some((f) => f.length !== size))
    return { module, tensor, shape: ref.shape, status: 'fail', note: `${frames.length} frames of ${frames[0]?.length} values here, ${ref.shape[0]} of ${size} in the dump` };
  frames.forEach((ours, i) => {
    let within = 0;
    for (let k = 0; k < size; k++) {
      const d = Math.abs(ours[k] - want[i * size + k]);
      if (d <= tol.u8Within) within++;
      if (d > max) max = d;
    }
    minShare = Math.min(minShare, within / size);
  });
  return {
    module,
    tensor,
    shape: ref.shape,
    status: minShare >= tol.share ? 'pass' : 'fail',
    maxAbs: max,
    maxRel: max / 255,
    tolerance: describeTolerance(tol),
    note: `worst frame ${(100 * minShare).toFixed(3)}% within ±${tol.u8Within}`,
  };
}
