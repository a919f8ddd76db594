/**
 * Hooks for experiments, and the platform's face detector.
 *
 * - A motion hook sees each frame's motion before rendering (the source's
 *   x_s, R, exp, t, scale, kp; the driving frame's; the driving keypoints
 *   x_d the options computed) and may return other driving keypoints: a new
 *   motion-transfer rule in a few lines.
 * - The face detector: the core cannot know where its models are; Node's
 *   adapter (`liveportrait-tfjs/node`) registers its packaged models, the
 *   page registers its URLs (`useFaceDetector`).
 */
import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import type { FaceDetector } from '../face/detector.js';
import type { MotionFrame } from '../formats/template.js';
import { NUM_KP } from '../models/types.js';
import type { SourceKeypoints } from '../motion/transfer.js';

/** The source face's motion on the host, as a hook sees it ([21 × 3] keypoints, row-major [3 × 3] R). */
export interface SourceMotion {
  x_s: Float32Array;
  R: Float32Array;
  exp: Float32Array;
  t: Float32Array;
  scale: number;
  kp: Float32Array;
}

/** What a motion hook sees of one frame and face. */
export interface MotionHookContext {
  /** Frame index, and face index (largest first) in a group photo. */
  index: number;
  face: number;
  source: SourceMotion;
  /** This driving frame's motion, and the first driving frame's (relative motion is measured from it). */
  driving: MotionFrame;
  first: MotionFrame;
  /** The driving keypoints the options give [21 × 3]. */
  x_d: Float32Array;
}

/**
 * Sees each frame's motion before rendering. Return new driving keypoints
 * (63 numbers) to render with them instead, or nothing to keep x_d.
 *
 * @example
 * // exaggerate every motion by half again
 * const onMotion: MotionHook = ({ source, x_d }) => x_d.map((v, i) => source.x_s[i] + 1.5 * (v - source.x_s[i]));
 */
export type MotionHook = (ctx: MotionHookContext) => ArrayLike<number> | void | undefined | Promise<ArrayLike<number> | void | undefined>;

const sourceMotions = new WeakMap<SourceKeypoints, SourceMotion>();

async function sourceMotion(src: SourceKeypoints): Promise<SourceMotion> {
  const hit = sourceMotions.get(src);
  if (hit) return hit;
  const s = src.x_s_info;
  const [x_s, R, exp, t, scale, kp] = (await Promise.all([src.x_s.data(), src.R_s.data(), s.exp.data(), s.t.data(), s.scale.data(), s.kp.data()])) as Float32Array[];
  const m = { x_s, R, exp, t, scale: scale[0], kp };
  sourceMotions.set(src, m);
  return m;
}

/** Run the hook on one frame's x_d; returns x_d itself or the replacement (x_d is then disposed). */
export async function applyMotionHook(hook: MotionHook, x_d: tf.Tensor3D, ctx: Omit<MotionHookContext, 'x_d' | 'source'> & { source: SourceKeypoints }): Promise<tf.Tensor3D> {
  const xd = Float32Array.from(await x_d.data());
  const out = await hook({ ...ctx, source: await sourceMotion(ctx.source), x_d: xd });
  if (out === undefined || out === null) return x_d;
  if (out.length !== NUM_KP * 3 || !Array.from(out).every(Number.isFinite))
    throw new InputError(`onMotion must return ${NUM_KP * 3} finite numbers (x_d, 21 keypoints × 3) or nothing, got ${out.length} values at frame ${ctx.index}`);
  x_d.dispose();
  return tf.tensor3d(Float32Array.from(out), [1, NUM_KP, 3]);
}

let detectorLoader: (() => Promise<FaceDetector>) | undefined;

/** Register where face detectors come from on this platform (Node's adapter does; a page passes its model URLs through FaceDetector.load). */
export function useFaceDetector(load: () => Promise<FaceDetector>): void {
  let shared: Promise<FaceDetector> | undefined;
  detectorLoader = () => {
    if (!shared) {
      shared = load();
      shared.catch(() => (shared = undefined));
    }
    return shared;
  };
}

/** The registered face detector; one line saying how to get one when none is. */
export function defaultFaceDetector(): Promise<FaceDetector> {
  if (!detectorLoader)
    return Promise.reject(
      new InputError("no face detector: import 'liveportrait-tfjs/node' (Node), or call useFaceDetector(() => FaceDetector.load({ detector, mesh })) with the models' URLs (a page), or pass crop: false for face crops"),
    );
  return detectorLoader();
}
