/**
 * The loops over a source video's face crops: animation by a driving input
 * (the reference's source-video mode, motion Kalman-smoothed) and the
 * reference's video retargeting (lips to one opening, or silent).
 */
import * as tf from '@tensorflow/tfjs';
import { InputError, LipArrayMissingError } from '../errors.js';
import { NUM_KP } from '../models/types.js';
import type { MotionFrame } from '../formats/template.js';
import { kalmanSmooth } from '../motion/kalman.js';
import { prepareMotion } from './motion_steps.js';
import { disposeSourceKeypoints, drivingKeypoints, sourceKeypointsFromMotion, sourceVideoEyeTarget, sourceVideoTargets } from '../motion/transfer.js';
import { lipRetargetTargets, silentLipTargets } from '../motion/retarget.js';
import { mapOrdered } from './frame_pool.js';
import type { Driving, DrivingPlan } from './driving.js';
import type { AnimatedFrame } from './renderer.js';
import { type AnyIterable, type DrivingFrameInput, type ImageInput, checkAborted, firstN, isFrameInput, prepareImage } from './inputs.js';
import type { LivePortrait } from './live_portrait.js';
import { type LoopOptions, type VideoRetargetOptions, splitLoopOptions } from './types.js';

/** A source video's face crops: an array, or a function returning a fresh pass (read twice). */
export type SourceFrames = (ImageInput | DrivingFrameInput)[] | (() => AnyIterable<ImageInput | DrivingFrameInput>);

/**
 * Animate a source video: its face crops (an array, or a function returning
 * a fresh iterable: it is read twice, once for motion, once for
 * appearance) each driven by the matching driving frame (or all by a
 * driving image), the motion Kalman-smoothed as the reference does.
 */
export async function* animateSourceVideo(lp: LivePortrait, 
  sourceFrames: SourceFrames,
  driving: Driving | DrivingPlan,
  options: LoopOptions = {},
): AsyncGenerator<AnimatedFrame> {
  const { anim: opts, signal, maxFrames, log } = splitLoopOptions(options);
  if (opts.animal) throw new InputError('animal mode animates a source image (as the reference); a source video is not supported');
  const open = typeof sourceFrames === 'function' ? sourceFrames : () => sourceFrames;
  // Pass 1: motion of the source and the driving frames (small, host memory).
  const srcTpl = await lp.makeTemplate(firstN(open(), maxFrames ?? Infinity));
  const plan = await lp.planDriving(driving, opts, { signal });
  const drivingIsVideo = plan.isVideo;
  let drv: MotionFrame[] = [];
  for await (const it of plan.frames()) {
    checkAborted(signal);
    if (drivingIsVideo && drv.length >= srcTpl.frames.length) break;
    drv.push(await lp.motionOf(it.frame, drv.length));
    if (!drivingIsVideo) break;
  }
  if (drv.length === 0) throw new InputError('the driving sequence is empty: no frames to animate');
  // Beyond the reference: the driving motion smoothed, and another reference frame (`auto`: pose nearest the first source frame's).
  const prepared = drivingIsVideo ? prepareMotion(drv, opts, { sourceR: srcTpl.frames[0].R, log }) : { motions: drv, reference: 0 };
  drv = prepared.motions;
  const ref = drv[prepared.reference];
  const n = drivingIsVideo ? Math.min(srcTpl.frames.length, drv.length) : srcTpl.frames.length;
  const targets = srcTpl.frames.slice(0, n).map((s, i) => sourceVideoTargets(s, drivingIsVideo ? drv[i] : drv[0], ref, opts, drivingIsVideo, lp.lipArray));
  const smooth = (xs: Float32Array[]) =>
    drivingIsVideo ? kalmanSmooth(xs, { observationVariance: opts.smoothObservationVariance, processVariance: opts.smoothProcessVariance }) : xs;
  const expS = smooth(targets.map((t) => t.exp));
  const RS = smooth(targets.map((t) => t.R));
  const eyeTarget = opts.sourceVideoEyeRetargeting && srcTpl.frames[0].eyeRatio ? sourceVideoEyeTarget([...srcTpl.frames[0].eyeRatio], opts) : undefined;
  // Pass 2: appearance of each source frame, warped and decoded.
  const renderer = lp.renderer;
  const render = async (fr: ImageInput | DrivingFrameInput, i: number): Promise<AnimatedFrame> => {
    checkAborted(signal);
    const img = isFrameInput(fr) ? fr.image : fr;
    const srcKp = sourceKeypointsFromMotion(srcTpl.frames[i]);
    const f_s = tf.tidy(() => lp.F.apply(prepareImage(img, `source frame ${i}`)));
    const d = drivingIsVideo ? drv[i] : drv[0];
    let x_d: tf.Tensor3D | undefined;
    try {
      x_d = drivingKeypoints(lp.S, srcKp, d, ref, opts, { drivingIsVideo, sourceIsVideo: true, smoothedExp: expS[i], smoothedR: RS[i], lipArray: lp.lipArray, sourceVideoEyeTarget: eyeTarget });
      return await renderer.render(i, f_s, srcKp.x_s, x_d, { perFrameFeature: true });
    } finally {
      x_d?.dispose();
      f_s.dispose();
      disposeSourceKeypoints(srcKp);
    }
  };
  yield* mapOrdered(firstN(open(), n), render, renderer.inFlight);
}

/**
 * The reference's video retargeting (`execute_video_retargeting`): every
 * source frame keeps its own motion; with a `lipRatio` the lips go to that
 * opening (R_lip deltas Kalman-smoothed), with `lipRatio: null` they are
 * kept silent (the neutral-lip expression but for the eyes). Then
 * stitching, W and G with the frame's own appearance feature. Frames need
 * their lip ratio (from face landmarks) unless silent.
 */
export async function* retargetVideo(lp: LivePortrait, sourceFrames: SourceFrames, opts: VideoRetargetOptions): AsyncGenerator<AnimatedFrame> {
      const open = typeof sourceFrames === 'function' ? sourceFrames : () => sourceFrames;
  const frames = (await lp.makeTemplate(open())).frames;
  let targets: Float32Array[];
  if (opts.lipRatio === null) {
    if (!lp.lipArray) throw new LipArrayMissingError("keeping the lips silent needs the reference's neutral-lip expression (lip_array.pkl): load it with the weights");
    targets = silentLipTargets(frames, lp.lipArray);
  } else targets = await lipRetargetTargets(lp.S, frames, opts.lipRatio, { observationVariance: opts.smoothObservationVariance, processVariance: opts.smoothProcessVariance });
  const renderer = lp.renderer;
  const render = async (fr: ImageInput | DrivingFrameInput, i: number): Promise<AnimatedFrame> => {
    checkAborted(opts.signal);
    const img = isFrameInput(fr) ? fr.image : fr;
    const f_s = tf.tidy(() => lp.F.apply(prepareImage(img, `source frame ${i}`)));
    const x_s = tf.tensor3d(Float32Array.from(frames[i].x_s!), [1, NUM_KP, 3]);
    let x_d: tf.Tensor3D | undefined;
    try {
      x_d = tf.tidy(() => lp.S.stitching(x_s, tf.tensor3d(targets[i], [1, NUM_KP, 3])));
      return await renderer.render(i, f_s, x_s, x_d, { perFrameFeature: true });
    } finally {
      x_d?.dispose();
      x_s.dispose();
      f_s.dispose();
    }
  };
  yield* mapOrdered(firstN(open(), frames.length), render, renderer.inFlight);
}

