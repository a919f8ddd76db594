/**
 * How close our tensors must be to the reference's, per fixture file and
 * tensor: the test suite's thresholds (test/<network>.test.ts), in one table.
 *
 * | file                          | tensor                                   | tolerance                 | test |
 * | ----------------------------- | ---------------------------------------- | ------------------------- | ---- |
 * | appearance_feature_extractor  | output                                   | 1e-4 abs                  | appearance_feature_extractor |
 * | motion_extractor              | pitch, yaw, roll, t, exp, scale, kp      | 2e-4 abs                  | motion_extractor |
 * | warping_module                | compress_out, deformation, occlusion_map | 1e-4 abs                  | warping_module |
 * | warping_module                | out, hourglass_out_sub, tap/*            | 1e-3 abs                  | warping_module |
 * | spade_generator               | fc_out_sub                               | 1e-4 abs                  | spade_generator |
 * | spade_generator               | output, G_middle_0_out_sub, tap/*        | 1e-3 abs                  | spade_generator |
 * | stitching_retargeting_module  | every output                             | 1e-5 abs                  | stitching_retargeting_module |
 * | camera                        | degree                                   | 1e-5 × scale              | camera |
 * | camera                        | rotation, x_s                            | 1e-5 abs                  | camera |
 * | ops                           | grid_sample_output                       | 1e-6 abs                  | grid_sample3d |
 * | pipeline                      | <option set>/x_d                         | 1e-4 abs                  | pipeline |
 * | pipeline                      | <option set>/frames (u8)                 | ±1 on ≥ 99.9 % of values  | pipeline |
 * | pipeline_animal               | x_s, <option set>/x_d                    | 1e-4 abs                  | animal |
 * | pipeline_animal               | motion_multiplier                        | 1e-5 × scale              | animal |
 * | pipeline_animal               | <option set>/frames (u8)                 | ±1 on ≥ 99.9 % of values  | animal |
 * | any other file                | tap/*                                    | 1e-3 abs                  | |
 *
 * "scale" is max |reference| over the tensor; the report's relative error is
 * max |ours − reference| / scale (elementwise ratios explode near zero).
 * Taps take the bound of the fixed tap of the same network (W's hourglass,
 * G's G_middle_0): float32 rounding grows through G's blocks to about 6e-5
 * at up_1 (scale ~8), W's hourglass levels stay near 1e-6.
 */

/** A bound on max |ours − reference|: absolute, relative to the reference's scale, either, or a u8 share. */
export type Tolerance = { abs?: number; rel?: number } | { u8Within: number; share: number };

export const TOLERANCES: Record<string, Record<string, Tolerance>> = {
  appearance_feature_extractor: { output: { abs: 1e-4 } },
  motion_extractor: Object.fromEntries(['pitch', 'yaw', 'roll', 't', 'exp', 'scale', 'kp'].map((k) => [k, { abs: 2e-4 }])),
  warping_module: {
    compress_out: { abs: 1e-4 },
    deformation: { abs: 1e-4 },
    occlusion_map: { abs: 1e-4 },
    out: { abs: 1e-3 },
    hourglass_out_sub: { abs: 1e-3 },
    'tap/*': { abs: 1e-3 },
  },
  spade_generator: {
    output: { abs: 1e-3 },
    fc_out_sub: { abs: 1e-4 },
    G_middle_0_out_sub: { abs: 1e-3 },
    'tap/*': { abs: 1e-3 },
  },
  stitching_retargeting_module: Object.fromEntries(['stitch_delta', 'stitched_kp_driving', 'eye_delta', 'lip_delta', 'tap/*'].map((k) => [k, { abs: 1e-5 }])),
  camera: { degree: { rel: 1e-5 }, rotation: { abs: 1e-5 }, x_s: { abs: 1e-5 } },
  ops: { grid_sample_output: { abs: 1e-6 } },
  pipeline: { '*/x_d': { abs: 1e-4 }, '*/frames': { u8Within: 1, share: 0.999 } },
  pipeline_animal: { x_s: { abs: 1e-4 }, motion_multiplier: { rel: 1e-5 }, '*/x_d': { abs: 1e-4 }, '*/frames': { u8Within: 1, share: 0.999 } },
};

const DEFAULT_TAP: Tolerance = { abs: 1e-3 };

/** The tolerance of `tensor` in fixture file `file` (undefined: none is defined). */
export function toleranceFor(file: string, tensor: string): Tolerance | undefined {
  const t = TOLERANCES[file];
  if (t?.[tensor]) return t[tensor];
  if (tensor.startsWith('tap/')) return t?.['tap/*'] ?? DEFAULT_TAP;
  const slash = tensor.lastIndexOf('/');
  if (slash > 0) return t?.[`*/${tensor.slice(slash + 1)}`];
  return undefined;
}

/** The bound for a tensor whose reference has max |.| = `scale`. */
export function bound(tol: Tolerance, scale: number): number {
  if ('u8Within' in tol) return tol.u8Within;
  return Math.max(tol.abs ?? 0, tol.rel !== undefined ? tol.rel * scale : 0);
}

export function describeTolerance(tol: Tolerance): string {
  if ('u8Within' in tol) return `±${tol.u8Within} on ≥${+(tol.share * 100).toFixed(2)}%`;
  const parts = [];
  if (tol.abs !== undefined) parts.push(tol.abs.toExponential(0));
  if (tol.rel !== undefined) parts.push(`${tol.rel.toExponential(0)}·scale`);
  return parts.join(' or ');
}
