/**
 * Animation options, with the reference's names in comments and its
 * command-line defaults (src/config/argument_config.py, which override
 * inference_config.py when the reference runs from its CLI).
 */

import { checkReferenceFrame } from './neutral.js';

export type AnimationRegion = 'all' | 'exp' | 'pose' | 'lip' | 'eyes';
export type DrivingOption = 'expression-friendly' | 'pose-friendly';

export interface AnimationOptions {
  /** flag_relative_motion: motion relative to the first driving frame (default true). */
  relativeMotion: boolean;
  /** animation_region: what the driving motion animates (default 'all'). */
  animationRegion: AnimationRegion;
  /** driving_multiplier: x_d = x_s + (x_d − x_s) · m at the end (default 1). */
  drivingMultiplier: number;
  /**
   * driving_option (default 'expression-friendly'): with relative motion and
   * a driving video on a source image, 'expression-friendly' scales the motion
   * by sqrt(vol hull(x_s)) / sqrt(vol hull(x_d,0)).
   */
  drivingOption: DrivingOption;
  /** flag_stitching (default true). */
  stitching: boolean;
  /** flag_eye_retargeting: transfer each driving frame's eye-open ratio (default false). */
  eyeRetargeting: boolean;
  /** flag_lip_retargeting: transfer each driving frame's lip-open ratio (default false). */
  lipRetargeting: boolean;
  /**
   * flag_normalize_lip: close the source's lips before animating, when its
   * lip-open ratio is known and ≥ lipNormalizeThreshold (default false, as
   * the reference's CLI; relative motion only; not with eye/lip retargeting).
   */
  normalizeLip: boolean;
  /** lip_normalize_threshold (0.03). */
  lipNormalizeThreshold: number;
  /**
   * flag_source_video_eye_retargeting: with a source video, keep every
   * frame's eye opening at the first source frame's (default false).
   */
  sourceVideoEyeRetargeting: boolean;
  /** source_video_eye_retargeting_threshold (0.18): below it the first frame counts as closed and 0.39 is used. */
  sourceVideoEyeRetargetingThreshold: number;
  /** driving_smooth_observation_variance (3e-7): Kalman smoothing with a source video. */
  smoothObservationVariance: number;
  /** The Kalman process variance (1e-5). */
  smoothProcessVariance: number;
  /**
   * The reference's animal pipeline (default false): the driving frame's
   * pose and expression on the source's canonical keypoints and scale,
   * scaled by the motion multiplier of the first driving frame (see
   * motion/animal.ts). Only `stitching` and `drivingMultiplier` apply then;
   * source images only, driven by a video or template.
   */
  animal: boolean;
  /**
   * Beyond the reference: Kalman smoothing of any driving video's motion
   * (pose angles, expression, translation, scale; motion/smooth.ts), the
   * observation variance of the reference's smoother (larger is smoother);
   * 0 (default) is off. Files: the two-pass smoother over the whole
   * motion, extracted first; live input: its causal forward pass.
   */
  drivingSmooth: number;
  /**
   * Beyond the reference: the driving frame relative motion is taken
   * against (default 0, the reference's), or 'auto': the most neutral frame
   * (motion/neutral.ts; live input: over its first seconds).
   */
  referenceFrame: number | 'auto';
}

export const DEFAULT_ANIMATION_OPTIONS: Readonly<AnimationOptions> = Object.freeze({
  relativeMotion: true,
  animationRegion: 'all',
  drivingMultiplier: 1,
  drivingOption: 'expression-friendly',
  stitching: true,
  eyeRetargeting: false,
  lipRetargeting: false,
  normalizeLip: false,
  lipNormalizeThreshold: 0.03,
  sourceVideoEyeRetargeting: false,
  sourceVideoEyeRetargetingThreshold: 0.18,
  smoothObservationVariance: 3e-7,
  smoothProcessVariance: 1e-5,
  animal: false,
  drivingSmooth: 0,
  referenceFrame: 0,
});

const REGIONS: AnimationRegion[] = ['all', 'exp', 'pose', 'lip', 'eyes'];
const DRIVING_OPTIONS: DrivingOption[] = ['expression-friendly', 'pose-friendly'];

/** Defaults filled in and values checked; errors are one line naming the option. */
export function resolveOptions(opts: Partial<AnimationOptions> = {}): AnimationOptions {
  const known = new Set(Object.keys(DEFAULT_ANIMATION_OPTIONS));
  for (const k of Object.keys(opts)) if (!known.has(k)) throw new Error(`unknown animation option '${k}'; known: ${[...known].join(', ')}`);
  const o: AnimationOptions = { ...DEFAULT_ANIMATION_OPTIONS };
  for (const [k, v] of Object.entries(opts)) if (v !== undefined) (o as unknown as Record<string, unknown>)[k] = v;
  if (!REGIONS.includes(o.animationRegion)) throw new Error(`animationRegion must be one of ${REGIONS.join(', ')}, got '${o.animationRegion}'`);
  if (!DRIVING_OPTIONS.includes(o.drivingOption)) throw new Error(`drivingOption must be one of ${DRIVING_OPTIONS.join(', ')}, got '${o.drivingOption}'`);
  for (const k of ['drivingMultiplier', 'lipNormalizeThreshold', 'sourceVideoEyeRetargetingThreshold', 'smoothObservationVariance', 'smoothProcessVariance'] as const)
    if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) throw new Error(`${k} must be a finite number, got ${String(o[k])}`);
  for (const k of ['relativeMotion', 'stitching', 'eyeRetargeting', 'lipRetargeting', 'normalizeLip', 'sourceVideoEyeRetargeting', 'animal'] as const)
    if (typeof o[k] !== 'boolean') throw new Error(`${k} must be true or false, got ${String(o[k])}`);
  if (typeof o.drivingSmooth !== 'number' || !Number.isFinite(o.drivingSmooth) || o.drivingSmooth < 0) throw new Error(`drivingSmooth must be 0 (off) or a positive variance, got ${String(o.drivingSmooth)}`);
  o.referenceFrame = checkReferenceFrame(o.referenceFrame);
  if (!(o.smoothObservationVariance > 0)) throw new Error(`smoothObservationVariance must be > 0, got ${o.smoothObservationVariance}`);
  if (!(o.smoothProcessVariance > 0)) throw new Error(`smoothProcessVariance must be > 0, got ${o.smoothProcessVariance}`);
  return o;
}
