/** The pipeline's shared types: a prepared source, a frame of several faces, the loops' options. */
import type * as tf from '@tensorflow/tfjs';
import type { FaceDetector } from '../face/detector.js';
import type { MotionFrame } from '../formats/template.js';
import { type AnimationOptions, resolveOptions } from '../motion/options.js';
import type { SourceKeypoints } from '../motion/transfer.js';
import type { MotionHook } from './hooks.js';
import type { DrivingFrameInput } from './inputs.js';
import type { AnimatedFrame } from './renderer.js';

/** Everything the animation needs of one source face crop. Owns its tensors: see disposeSource. */
export interface SourceInfo extends SourceKeypoints {
  /** Appearance feature volume [1, 16, 64, 64, 32] (NDHWC). */
  f_s: tf.Tensor5D;
  /** Canonical keypoints x_c,s [1, 21, 3] (= x_s_info.kp). */
  x_c_s: tf.Tensor3D;
}

/** One frame of animateFaces: the animated crop of each face, and the driving frame it came from. */
export interface AnimatedFaces {
  index: number;
  faces: AnimatedFrame[];
  input: DrivingFrameInput | MotionFrame;
  /** The driving frame's motion (with one driving per face: the first driven face's). */
  motion: MotionFrame;
  /** Each face's driving motion this frame (undefined: a face without a driving, kept still). */
  motions: (MotionFrame | undefined)[];
}

/** Options of the loops on face crops: the reference's animation options, and hooks. */
export interface LoopOptions extends Partial<AnimationOptions> {
  /** Sees each frame's motion before rendering and may replace its driving keypoints (see MotionHook). */
  onMotion?: MotionHook;
  /** Stop between frames (the loop throws the signal's reason). */
  signal?: AbortSignal;
  /** Most frames to animate. */
  maxFrames?: number;
  /** Info lines (the reference frame chosen, notes). */
  log?: (line: string) => void;
  /** Makes the current driving frame the reference on request (the page's "set neutral"; see ReferenceControl). */
  referenceControl?: ReferenceControl;
}

/**
 * A switch for the reference frame during a run: `setNeutral()` makes the
 * next driving frame the reference of relative motion (the webcam's "set
 * neutral" button). Give it as the loop option `referenceControl`.
 */
export class ReferenceControl {
  private pending = false;
  /** The next driving frame becomes the reference. */
  setNeutral(): void {
    this.pending = true;
  }
  /** Whether a request is pending (and clear it): the loop's side. */
  take(): boolean {
    const p = this.pending;
    this.pending = false;
    return p;
  }
}

export interface LivePortraitOptions {
  /**
   * The reference's neutral-lip expression (lip_array.pkl, [1, 21, 3]) for
   * image-driven relative motion: 63 numbers, or the bytes of that .pkl.
   */
  lipArray?: ArrayLike<number> | Uint8Array;
  /** Where the face detector comes from (default: the one registered for this platform; Node registers its packaged models). */
  faceDetector?: () => Promise<FaceDetector>;
}

/** Options of LivePortrait.retargetVideo. */
export interface VideoRetargetOptions {
  /** The target lip-open ratio (the reference's slider, 0 to 0.8), or null to keep the lips silent. */
  lipRatio: number | null;
  /** Kalman smoothing of the lip deltas (default 3e-7; the reference's app uses 3e-6 here). */
  smoothObservationVariance?: number;
  smoothProcessVariance?: number;
  signal?: AbortSignal;
}

const LOOP_KEYS = ['onMotion', 'signal', 'maxFrames', 'log', 'referenceControl'] as const;
export function splitLoopOptions(o: LoopOptions): { anim: AnimationOptions; onMotion?: MotionHook; signal?: AbortSignal; maxFrames?: number; log?: (line: string) => void; referenceControl?: ReferenceControl } {
  const rest: Record<string, unknown> = { ...o };
  for (const k of LOOP_KEYS) delete rest[k];
  return { anim: resolveOptions(rest as Partial<AnimationOptions>), onMotion: o.onMotion, signal: o.signal, maxFrames: o.maxFrames, log: o.log, referenceControl: o.referenceControl };
}

