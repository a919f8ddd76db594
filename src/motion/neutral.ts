/**
 * The reference frame of relative motion (the driving frame the motion is
 * taken against; the reference always uses frame 0) and how `auto` picks
 * the most neutral one.
 *
 * Neutrality score of a driving frame f (lower is more neutral):
 *
 *   score(f) = ‖δ_f‖ + θ(R_f, R_src)
 *
 * - ‖δ_f‖: the Frobenius norm of the frame's expression deformation
 *   (21 × 3; the motion extractor's δ, zero for the canonical face);
 * - θ: the angle in radians of the rotation between the frame's head pose
 *   and the source face's, arccos((tr(R_fᵀ R_src) − 1) / 2) (the geodesic
 *   distance on the rotation group; 0 without a source pose).
 *
 * Both are in comparable units (a broad smile is ‖δ‖ ≈ 0.1–0.3, a 10° turn
 * 0.17 rad). The lowest score wins; ties go to the earliest frame.
 */
import type { MotionFrame } from '../formats/template.js';

export type ReferenceFrame = number | 'auto';

/** The geodesic angle (radians) between two rotations (row-major 3 × 3). */
export function rotationAngle(A: ArrayLike<number>, B: ArrayLike<number>): number {
  let tr = 0;
  for (let i = 0; i < 3; i++) for (let k = 0; k < 3; k++) tr += A[k * 3 + i] * B[k * 3 + i];
  return Math.acos(Math.max(-1, Math.min(1, (tr - 1) / 2)));
}

/** The neutrality score of one driving frame against the source's rotation (see the module comment). */
export function neutralityScore(f: MotionFrame, sourceR?: ArrayLike<number>): number {
  let e = 0;
  for (let k = 0; k < f.exp.length; k++) e += f.exp[k] * f.exp[k];
  return Math.sqrt(e) + (sourceR ? rotationAngle(f.R, sourceR) : 0);
}

/** The index of the most neutral frame (lowest score, earliest on ties). */
export function mostNeutralFrame(frames: readonly MotionFrame[], sourceR?: ArrayLike<number>): number {
  let best = 0;
  let bestScore = Infinity;
  frames.forEach((f, i) => {
    const s = neutralityScore(f, sourceR);
    if (s < bestScore) [best, bestScore] = [i, s];
  });
  return best;
}

/** Check the option: a frame index (0 or more) or 'auto'; one line naming it otherwise. */
export function checkReferenceFrame(v: unknown): ReferenceFrame {
  if (v === 'auto') return v;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  throw new Error(`referenceFrame must be a frame index (0 or more) or 'auto', got ${JSON.stringify(v)}`);
}
