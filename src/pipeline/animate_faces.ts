/**
 * The animation loop (LivePortrait.animateFaces): prepared faces of one
 * picture driven by one driving input, or each face by its own
 * (`FaceDrivings`). Motion and keypoints are computed in frame order
 * (motion_steps.ts: smoothing, the reference frame); W and G here or in the
 * frame pool, several frames in flight, yielded in order.
 *
 * With one driving per face: a face without a driving stays still (x_d =
 * x_s: the source face as it is); the run lasts as long as the longest
 * driving, and a face whose driving has ended holds its last frame.
 */
import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import type { MotionFrame } from '../formats/template.js';
import { animalMotionMultiplier } from '../motion/animal.js';
import type { Driving, DrivingPlan } from './driving.js';
import { mapOrdered } from './frame_pool.js';
import { applyMotionHook } from './hooks.js';
import { checkAborted } from './inputs.js';
import type { LivePortrait } from './live_portrait.js';
import { type MotionStep, motionSteps } from './motion_steps.js';
import { type AnimatedFaces, type LoopOptions, type SourceInfo, splitLoopOptions } from './types.js';

/** One driving per face, by the faces' order in the call (null or a hole: that face stays still). */
export type FaceDrivings = readonly (Driving | DrivingPlan | null | undefined)[];

export async function* animateFaces(lp: LivePortrait, sources: SourceInfo[], driving: Driving | DrivingPlan | FaceDrivings, options: LoopOptions = {}): AsyncGenerator<AnimatedFaces> {
  if (sources.length === 0) throw new InputError('animateFaces: no source faces');
  const { anim: opts, onMotion, signal, maxFrames, log, referenceControl } = splitLoopOptions(options);
  const perFace = Array.isArray(driving);
  const slots: (Driving | DrivingPlan | undefined)[] = perFace ? sources.map((_, k) => (driving as FaceDrivings)[k] ?? undefined) : [driving as Driving | DrivingPlan];
  if (perFace) {
    const given = driving as FaceDrivings;
    if (given.length > sources.length) throw new InputError(`drivings: ${given.length} given for ${sources.length} face(s); give at most one per face`);
    if (!slots.some(Boolean)) throw new InputError('drivings: no face has a driving; give at least one');
  }
  const plans = await Promise.all(slots.map((d) => (d ? lp.planDriving(d, opts, { signal, limit: maxFrames, log }) : undefined)));
  // `auto` measures the pose against the face it drives (one driving for all faces: the first face).
  const sourceRs = opts.referenceFrame === 'auto' ? await Promise.all(plans.map(async (p, s) => (p ? ((await sources[s].R_s.data()) as Float32Array) : undefined))) : [];
  const streams = plans.map((p, s) =>
    p ? motionSteps(lp, p, opts, { signal, sourceR: sourceRs[s], log, control: referenceControl, name: perFace ? `the driving of face ${s}` : 'the driving' })[Symbol.asyncIterator]() : undefined,
  );
  const slotOf = (k: number) => (perFace ? k : 0);
  const limit = maxFrames ?? Infinity;
  const last: (MotionStep | undefined)[] = plans.map(() => undefined);

  // Each frame: every driving's next step (a driving that has ended holds its last); done when all have ended.
  async function* items(): AsyncGenerator<(MotionStep | undefined)[]> {
    const done = plans.map((p) => !p);
    try {
      for (let i = 0; i < limit; i++) {
        checkAborted(signal);
        let fresh = false;
        for (const [s, it] of streams.entries()) {
          if (!it || done[s]) continue;
          const r = await it.next();
          if (r.done) done[s] = true;
          else [last[s], fresh] = [r.value, true];
        }
        if (!fresh) return;
        yield last.slice();
      }
    } finally {
      await Promise.all(streams.map((it) => it?.return?.(undefined)));
    }
  }

  const perFrameFeature = sources.length > 1;
  const renderer = lp.renderer;
  if (!perFrameFeature) await renderer.setSource(sources[0].f_s);
  // Animal mode: each face's motion multiplier for its reference frame (the reference computes it at frame 0).
  const multipliers = sources.map(() => new WeakMap<MotionFrame, number>());
  const render = async (steps: (MotionStep | undefined)[], i: number): Promise<AnimatedFaces> => {
    const faces = await Promise.all(
      sources.map(async (src, k) => {
        const s = slotOf(k);
        const step = steps[s];
        let x_d: tf.Tensor3D;
        if (!step) x_d = tf.clone(src.x_s);
        else {
          let mm: number | undefined;
          if (opts.animal) {
            mm = multipliers[k].get(step.first);
            if (mm === undefined) multipliers[k].set(step.first, (mm = await animalMotionMultiplier(src, step.first)));
          }
          x_d = await lp.drivingKeypoints(src, step.motion, step.first, opts, { drivingIsVideo: plans[s]!.isVideo, lipArray: lp.lipArray, motionMultiplier: mm });
        }
        try {
          if (onMotion && step) x_d = await applyMotionHook(onMotion, x_d, { index: i, face: k, source: src, driving: step.motion, first: step.first });
          return await renderer.render(i, src.f_s, src.x_s, x_d, { perFrameFeature });
        } finally {
          x_d.dispose();
        }
      }),
    );
    const lead = steps.find(Boolean)!;
    return { index: i, faces, input: lead.input, motion: lead.motion, motions: sources.map((_, k) => steps[slotOf(k)]?.motion) };
  };
  let count = 0;
  for await (const frame of mapOrdered(items(), render, renderer.inFlight)) {
    count++;
    yield frame;
  }
  if (count === 0) throw new InputError('the driving sequence is empty: no frames to animate');
}
