/**
 * The table of parity cases: which modules a reference dump holds, which of
 * each file's tensors are inputs, which fixed outputs W and G give through
 * their taps (and how the dump strided them), and the pipeline's option
 * sets. `liveportrait parity` (compare.ts) and the test suite
 * (test/helpers/parity.ts) both read them from here; the bounds are in
 * tolerances.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { type HostTensor, toFloat32 } from '../formats/host_tensor.js';
import type { MotionFrame } from '../formats/template.js';
import type { AnimationOptions } from '../motion/options.js';
import { type FixtureFile, FixtureError } from './fixture.js';

/** The modules a dump can hold, in the order they run; alias is the --modules name. */
export const PARITY_MODULES = [
  { stem: 'appearance_feature_extractor', alias: 'F' },
  { stem: 'motion_extractor', alias: 'M' },
  { stem: 'warping_module', alias: 'W' },
  { stem: 'spade_generator', alias: 'G' },
  { stem: 'stitching_retargeting_module', alias: 'S' },
  { stem: 'camera', alias: 'camera' },
  { stem: 'ops', alias: 'ops' },
  { stem: 'pipeline', alias: 'pipeline' },
] as const;

/** Inputs of each fixture file, as the dumper stores them (never compared: everything else is an output or a tap). */
export const FIXTURE_INPUTS: Readonly<Record<string, readonly string[]>> = {
  appearance_feature_extractor: ['input'],
  motion_extractor: ['input'],
  warping_module: ['kp_source', 'kp_driving', 'feature_3d'],
  spade_generator: ['input'],
  stitching_retargeting_module: ['kp_source', 'kp_driving', 'eye_ratio', 'lip_ratio'],
  camera: ['bins', 'pyr_degrees', 'x_s_info_kp', 'x_s_info_pitch', 'x_s_info_yaw', 'x_s_info_roll', 'x_s_info_t', 'x_s_info_exp', 'x_s_info_scale'],
  ops: ['grid_sample_input', 'grid_sample_grid'],
  pipeline: ['source_rgb256', 'driving_rgb256'],
};

/** A fixed fixture name computed from a tap path of ours (and strided like the dump's `_sub` tensors). */
export interface FixedOutput {
  path: string;
  /** Strides taken in the dump's (PyTorch) layout, e.g. [1, 1, 4, 4, 4] for `[:, :, ::4, ::4, ::4]`. */
  strides?: number[];
}

/** The fixture names W and G produce through their taps (see WarpingModule / SpadeGenerator applyWithTaps). */
export const FIXED_OUTPUTS: Readonly<Record<string, Readonly<Record<string, FixedOutput>>>> = {
  warping_module: {
    out: { path: '/out' },
    occlusion_map: { path: '/occlusion_map' },
    deformation: { path: '/deformation' },
    compress_out: { path: 'dense_motion_network.compress' },
    hourglass_out_sub: { path: 'dense_motion_network.hourglass', strides: [1, 1, 4, 4, 4] },
  },
  spade_generator: {
    output: { path: '' },
    fc_out_sub: { path: 'fc', strides: [1, 1, 2, 2] },
    G_middle_0_out_sub: { path: 'G_middle_0', strides: [1, 1, 2, 2] },
  },
};

/** Networks whose taps we record. */
export const TAPPED: ReadonlySet<string> = new Set(['warping_module', 'spade_generator']);

/** NCHW → NHWC and NCDHW → NDHWC permutations, and back. */
export const TO_NHWC = [0, 2, 3, 1];
export const TO_NCHW = [0, 3, 1, 2];
export const TO_NDHWC = [0, 2, 3, 4, 1];
export const TO_NCDHW = [0, 4, 1, 2, 3];

/** A stored tensor as a tfjs tensor (U8 as int32, anything else as float32), optionally permuted. */
export function hostToTensor(t: HostTensor, perm?: number[]): tf.Tensor {
  return tf.tidy(() => {
    const x = t.dtype === 'U8' ? tf.tensor(Int32Array.from(t.data as Uint8Array), t.shape, 'int32') : tf.tensor(toFloat32(t), t.shape, 'float32');
    return perm ? tf.transpose(x, perm) : x;
  });
}

/** One option set of a dumped pipeline file (its metadata, JSON): the reference's flags and the combined ratios. */
export interface OptionSet {
  relative: boolean;
  stitching: boolean;
  region: AnimationOptions['animationRegion'];
  multiplier: number;
  eye_ratio?: number[][];
  lip_ratio?: number[][];
}

/** The option sets of a pipeline file: every metadata entry with an `<name>/x_d` or `<name>/frames` tensor, in header order. */
export function pipelineOptionSets(file: FixtureFile): [string, OptionSet][] {
  return Object.entries(file.metadata).flatMap(([k, v]) => {
    if (!file.tensors.has(`${k}/x_d`) && !file.tensors.has(`${k}/frames`)) return [];
    try {
      return [[k, JSON.parse(v) as OptionSet] as [string, OptionSet]];
    } catch {
      throw new FixtureError(`pipeline.safetensors: the metadata of option set '${k}' is not JSON; dump the pipeline again`);
    }
  });
}

/** An option set as our animation options. */
export function toOptions(o: OptionSet): Partial<AnimationOptions> {
  return {
    relativeMotion: o.relative,
    stitching: o.stitching,
    animationRegion: o.region,
    drivingMultiplier: o.multiplier,
    eyeRetargeting: !!o.eye_ratio,
    lipRetargeting: !!o.lip_ratio,
  };
}

/** The dump's combined ratios split into source ratios and per-frame driving ratios (as tools/reference/dump.py combines them). */
export function withRatios(o: OptionSet, motion: MotionFrame[]): { ratios?: { eyeRatio: number[]; lipRatio: number }; frames: MotionFrame[] } {
  if (!o.eye_ratio || !o.lip_ratio) return { frames: motion };
  const e = o.eye_ratio;
  const l = o.lip_ratio;
  return {
    ratios: { eyeRatio: e[0].slice(0, 2), lipRatio: l[0][0] },
    frames: motion.map((m, i) => ({ ...m, eyeRatio: Float32Array.of(e[i][2], e[i][2]), lipRatio: l[i][1] })),
  };
}
