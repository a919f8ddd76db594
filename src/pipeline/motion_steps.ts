/**
 * Driving motion frame by frame with what relative motion needs: the
 * frame's motion (smoothed when `drivingSmooth` is on) and the reference
 * frame it is taken against (`referenceFrame`, or a ReferenceControl's
 * "set neutral").
 *
 * A driving file (a finite video or template) whose motion must be known
 * ahead (smoothing: the Kalman smoother is two-pass; a reference frame
 * other than 0) is read twice: first its motion only (host data, one
 * MotionFrame per frame), smoothed and its reference chosen; then its frames
 * again (for the panels), paired with that motion. Live input (endless) is
 * read once: the causal forward filter, the reference at frame N once
 * reached, and `auto` as the most neutral frame of the first seconds.
 */
import { InputError } from '../errors.js';
import type { MotionFrame } from '../formats/template.js';
import type { AnimationOptions } from '../motion/options.js';
import { CausalMotionSmoother, smoothMotion } from '../motion/smooth.js';
import { mostNeutralFrame, neutralityScore } from '../motion/neutral.js';
import { type DrivingPlan, fpsValue } from './driving.js';
import { type DrivingFrameInput, checkAborted } from './inputs.js';
import type { LivePortrait } from './live_portrait.js';
import type { ReferenceControl } from './types.js';

/** One driving frame ready for the keypoint math. */
export interface MotionStep {
  input: DrivingFrameInput | MotionFrame;
  motion: MotionFrame;
  /** The reference frame's motion (relative motion is taken against it). */
  first: MotionFrame;
}

export interface MotionStepContext {
  signal?: AbortSignal;
  /** The source face's rotation (row-major 3 × 3), for `auto`. */
  sourceR?: ArrayLike<number>;
  log?: (line: string) => void;
  control?: ReferenceControl;
  /** Named in messages ('the driving', 'the driving of face 1'). */
  name?: string;
}

/** Live input: `auto` looks for the most neutral frame over this many seconds from the start. */
export const AUTO_REFERENCE_LIVE_SECONDS = 2;

/** Whether a finite driving needs its whole motion before the first frame. */
export function needsMotionFirst(plan: DrivingPlan, opts: AnimationOptions): boolean {
  return plan.isVideo && Number.isFinite(plan.count) && (opts.drivingSmooth > 0 || opts.referenceFrame !== 0);
}

/**
 * The whole motion of a driving file prepared: smoothed when asked, and the
 * reference frame's index (checked against the length; `auto` chosen and
 * logged).
 */
export function prepareMotion(motions: MotionFrame[], opts: AnimationOptions, ctx: MotionStepContext = {}): { motions: MotionFrame[]; reference: number } {
  const name = ctx.name ?? 'the driving';
  const smoothed = opts.drivingSmooth > 0 && motions.length > 1 ? smoothMotion(motions, { observationVariance: opts.drivingSmooth, processVariance: opts.smoothProcessVariance }) : motions;
  let reference = 0;
  if (opts.referenceFrame === 'auto') {
    reference = mostNeutralFrame(smoothed, ctx.sourceR);
    ctx.log?.(`reference frame: ${reference} of ${name} (auto: the most neutral of ${smoothed.length} frames, score ${neutralityScore(smoothed[reference], ctx.sourceR).toFixed(4)})`);
  } else {
    reference = opts.referenceFrame;
    if (reference >= smoothed.length) throw new InputError(`referenceFrame ${reference} is past the last frame of ${name} (${smoothed.length} frames)`);
    if (reference !== 0) ctx.log?.(`reference frame: ${reference} of ${name}`);
  }
  return { motions: smoothed, reference };
}

/** The driving's frames with their motion and reference, in order. */
export async function* motionSteps(lp: LivePortrait, plan: DrivingPlan, opts: AnimationOptions, ctx: MotionStepContext = {}): AsyncGenerator<MotionStep> {
  if (needsMotionFirst(plan, opts)) {
    const raw: MotionFrame[] = [];
    for await (const it of plan.frames()) {
      checkAborted(ctx.signal);
      raw.push(await lp.motionOf(it.frame, raw.length));
    }
    if (raw.length === 0) return;
    const { motions, reference } = prepareMotion(raw, opts, ctx);
    let first = motions[reference];
    let i = 0;
    for await (const it of plan.frames()) {
      checkAborted(ctx.signal);
      if (i >= motions.length) break;
      if (ctx.control?.take()) {
        first = motions[i];
        ctx.log?.(`reference frame: ${i} (set)`);
      }
      yield { input: it.frame, motion: motions[i++], first };
    }
    return;
  }
  // One pass: live input, or nothing to know ahead.
  const smoother = opts.drivingSmooth > 0 && plan.isVideo ? new CausalMotionSmoother({ observationVariance: opts.drivingSmooth, processVariance: opts.smoothProcessVariance }) : undefined;
  const autoFrames = Math.max(1, Math.round(AUTO_REFERENCE_LIVE_SECONDS * fpsValue(plan.fps)));
  const ref = opts.referenceFrame;
  let first: MotionFrame | undefined;
  let best = Infinity;
  let i = 0;
  for await (const it of plan.frames()) {
    checkAborted(ctx.signal);
    const raw = await lp.motionOf(it.frame, i);
    const m = smoother ? smoother.push(raw) : raw;
    first ??= m;
    if (ref === 'auto' && i < autoFrames) {
      const s = neutralityScore(m, ctx.sourceR);
      if (s < best) [best, first] = [s, m];
      if (i === autoFrames - 1) ctx.log?.(`reference frame: the most neutral of the first ${autoFrames} frames (score ${best.toFixed(4)})`);
    } else if (typeof ref === 'number' && ref > 0 && i === ref) {
      first = m;
      ctx.log?.(`reference frame: ${i}`);
    }
    if (ctx.control?.take()) {
      first = m;
      ctx.log?.(`reference frame: ${i} (set)`);
    }
    yield { input: it.frame, motion: m, first };
    i++;
  }
}
