/**
 * The reference's single-image edits (its gradio retargeting panel): head
 * pose offsets, eye and lip openness targets, and the expression sliders
 * (smile, wink, eyebrow, gaze, the four lip sliders), as changes of the
 * expression deformation δ. Pure functions on host arrays.
 */
import { InputError } from '../errors.js';
import { NUM_KP } from '../models/types.js';

/** Single-image edits, as the reference's gradio retargeting panel. */
export interface RetargetEdit {
  /** Target eye-open ratio (needs the source's eye ratios). */
  eyeRatio?: number;
  /** Target lip-open ratio (needs the source's lip ratio). */
  lipRatio?: number;
  /** Degrees added to the source head pose. */
  pitch?: number;
  yaw?: number;
  roll?: number;
  /** Moves of keypoint 5 (x, y), and a zoom factor on s (default 1). */
  movX?: number;
  movY?: number;
  movZ?: number;
  smile?: number;
  wink?: number;
  eyebrow?: number;
  eyeballX?: number;
  eyeballY?: number;
  /** The gradio panel's four lip sliders. */
  lipVariation?: [number?, number?, number?, number?];
  /** Offsets added to individual expression keypoints δ[index] (x, y, z). */
  expression?: { index: number; delta: [number, number, number] }[];
  /** Stitch the result (default true). */
  stitching?: boolean;
}

// The gradio panel's expression sliders: [keypoint, axis, coefficient] per unit.
const SLIDERS: Record<string, [number, number, number][]> = {
  smile: [[20, 1, -0.01], [14, 1, -0.02], [17, 1, 0.0065], [17, 2, 0.003], [13, 1, -0.00275], [16, 1, -0.00275], [3, 1, -0.0035], [7, 1, -0.0035]],
  wink: [[11, 1, 0.001], [13, 1, -0.0003], [17, 0, 0.0003], [17, 1, 0.0003], [3, 1, -0.0003]],
  lip0: [[19, 0, 1]],
  lip1: [[14, 1, 0.001], [3, 1, -0.0005], [7, 1, -0.0005], [17, 2, -0.0005]],
  lip2: [[20, 2, -0.001], [20, 1, -0.001], [14, 1, -0.001]],
  lip3: [[19, 1, 0.001], [19, 2, 0.0001], [17, 1, -0.0001]],
};

/** The gradio panel's edits of δ [63], in its order. */
export function applyExpressionEdits(exp: Float32Array, e: RetargetEdit): Float32Array {
  const d = Float32Array.from(exp);
  const add = (k: number, a: number, v: number) => (d[3 * k + a] += v);
  const slider = (name: string, v: number | undefined) => {
    if (v) for (const [k, a, c] of SLIDERS[name]) add(k, a, v * c);
  };
  const ex = e.eyeballX ?? 0;
  const ey = e.eyeballY ?? 0;
  if (ex !== 0 || ey !== 0) {
    add(11, 0, ex * (ex > 0 ? 0.0007 : 0.001));
    add(15, 0, ex * (ex > 0 ? 0.001 : 0.0007));
    add(11, 1, ey * -0.001);
    add(15, 1, ey * -0.001);
    const blink = -ey / 2;
    add(11, 1, blink * -0.001);
    add(13, 1, blink * 0.0003);
    add(15, 1, blink * -0.001);
    add(16, 1, blink * 0.0003);
  }
  slider('smile', e.smile);
  slider('wink', e.wink);
  const b = e.eyebrow ?? 0;
  if (b > 0) {
    add(1, 1, b * 0.001);
    add(2, 1, b * -0.001);
  } else if (b < 0) {
    add(1, 0, b * -0.001);
    add(2, 0, b * 0.001);
    add(1, 1, b * 0.0003);
    add(2, 1, b * -0.0003);
  }
  const lv = e.lipVariation ?? [];
  slider('lip0', lv[0]);
  slider('lip1', lv[1]);
  slider('lip2', lv[2]);
  slider('lip3', lv[3]);
  if (e.movX) add(5, 0, -e.movX);
  if (e.movY) add(5, 1, e.movY);
  for (const { index, delta } of e.expression ?? []) {
    if (!Number.isInteger(index) || index < 0 || index >= NUM_KP) throw new InputError(`expression keypoint index must be 0..${NUM_KP - 1}, got ${index}`);
    for (let a = 0; a < 3; a++) add(index, a, delta[a] ?? 0);
  }
  return d;
}

