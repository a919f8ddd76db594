/**
 * Eye and lip open ratios (the reference's retargeting_utils
 * calc_eye_close_ratio / calc_lip_close_ratio), on FaceMesh 468 points; the
 * retargeting networks' combined inputs are in src/motion/transfer.ts.
 *
 * Mapping from the reference's 203-point model:
 *   eye  (per eye): |upper lid − lower lid| / |outer corner − inner corner|
 *        203: (6,18)/(0,12) and (30,42)/(24,36) → FaceMesh (159,145)/(33,133)
 *        for the image-left eye and (386,374)/(362,263) for the image-right eye
 *   lip: |inner upper lip − inner lower lip| / |mouth corner − mouth corner|
 *        203: (90,102)/(48,66) → FaceMesh (13,14)/(61,291)
 * Ratios do not depend on scale, rotation or translation, so landmarks in
 * original or crop coordinates give the same values.
 */
import type { Point2 } from '../image/affine.js';

const EPS = 1e-6;
const dist = (a: Point2, b: Point2) => Math.hypot(a[0] - b[0], a[1] - b[1]);

function ratio(lmk: Point2[], i1: number, i2: number, i3: number, i4: number): number {
  return dist(lmk[i1], lmk[i2]) / (dist(lmk[i3], lmk[i4]) + EPS);
}

/** Eye open ratios [1, 2]: [[image-left eye, image-right eye]]. */
export function calcEyeCloseRatio(lmk: Point2[]): number[][] {
  return [[ratio(lmk, 159, 145, 33, 133), ratio(lmk, 386, 374, 362, 263)]];
}

/** Lip open ratio [1, 1]. */
export function calcLipCloseRatio(lmk: Point2[]): number[][] {
  return [[ratio(lmk, 13, 14, 61, 291)]];
}

/** Per-frame ratios of a driving sequence (the wrapper's calc_ratio): eyes [1,2] and lip [1,1] per frame. */
export function calcRatio(lmkList: Point2[][]): { eyes: number[][][]; lip: number[][][] } {
  return { eyes: lmkList.map(calcEyeCloseRatio), lip: lmkList.map(calcLipCloseRatio) };
}

/** A face's eye and lip ratios from its landmarks, as the networks take them (none without landmarks). */
export function ratiosFromLandmarks(lmk: Point2[] | undefined): { eyeRatio?: number[]; lipRatio?: number } {
  if (!lmk || lmk.length === 0) return {};
  return { eyeRatio: calcEyeCloseRatio(lmk)[0], lipRatio: calcLipCloseRatio(lmk)[0][0] };
}
