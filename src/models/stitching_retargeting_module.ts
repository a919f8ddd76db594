/**
 * S and R: the stitching MLP and the two retargeting MLPs (eyes, lip) of
 * LivePortrait, with the wrapper's functions around them.
 *
 * - stitching: [x_s, x_d] (126) → 128 → 128 → 64 → 65: a keypoint offset (63)
 *   plus a 2-D translation (tx, ty);
 * - lip:  [x_s, c_lip]  (63 + 2) → 128 → 128 → 64 → 63;
 * - eye:  [x_s, c_eyes] (63 + 3) → 256 → 256 → 128 → 128 → 64 → 63.
 *
 * Linear layers sit at the even indices of `mlp` (`mlp.0`, `mlp.2`, ...), ReLU
 * between them. In the official checkpoint the three state dicts are the
 * entries 'retarget_shoulder' (stitching), 'retarget_mouth' (lip) and
 * 'retarget_eye' (eye).
 */
import * as tf from '@tensorflow/tfjs';
import { Linear, disposeAll } from '../layers/core.js';
import type { ParamReader } from '../layers/params.js';
import type { ParamSpec } from '../layers/params.js';


/** Layer widths of the three MLPs, input first. */
export const STITCHING_SIZES = { stitching: [126, 128, 128, 64, 65], lip: [65, 128, 128, 64, 63], eye: [66, 256, 256, 128, 128, 64, 63] } as const;

export type StitchingPart = keyof typeof STITCHING_SIZES;

/** The checkpoint's name of each part ('retarget_shoulder' is the stitching MLP). */
export const STITCHING_CHECKPOINT_NAMES: Record<StitchingPart, string> = {
  stitching: 'retarget_shoulder',
  lip: 'retarget_mouth',
  eye: 'retarget_eye',
};

function mlpSpecs(sizes: readonly number[]): ParamSpec[] {
  const specs: ParamSpec[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    specs.push({ key: `mlp.${2 * i}.weight`, shape: [sizes[i + 1], sizes[i]] });
    specs.push({ key: `mlp.${2 * i}.bias`, shape: [sizes[i + 1]] });
  }
  return specs;
}

/** Parameter lists (official keys, PyTorch shapes) of the three MLPs. */
export function stitchingRetargetingSpecs(): Record<StitchingPart, ParamSpec[]> {
  return { stitching: mlpSpecs(STITCHING_SIZES.stitching), lip: mlpSpecs(STITCHING_SIZES.lip), eye: mlpSpecs(STITCHING_SIZES.eye) };
}

/** Linear → ReLU → ... → Linear. */
export class Mlp {
  readonly layers: Linear[];
  readonly inputSize: number;

  constructor(p: ParamReader, sizes: readonly number[]) {
    this.layers = [];
    for (let i = 0; i + 1 < sizes.length; i++) {
      p.host(`mlp.${2 * i}.weight`, [sizes[i + 1], sizes[i]]);
      p.host(`mlp.${2 * i}.bias`, [sizes[i + 1]]);
      this.layers.push(new Linear(p, `mlp.${2 * i}`));
    }
    this.inputSize = sizes[0];
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    if (x.rank !== 2 || x.shape[1] !== this.inputSize) throw new Error(`MLP input must be [N, ${this.inputSize}], got ${JSON.stringify(x.shape)}`);
    return tf.tidy(() => {
      let y: tf.Tensor = x;
      this.layers.forEach((l, i) => {
        y = l.apply(y);
        if (i + 1 < this.layers.length) y = tf.relu(y);
      });
      return y as tf.Tensor2D;
    });
  }

  dispose(): void {
    disposeAll(this.layers);
  }
}

function checkKp(name: string, kp: tf.Tensor): void {
  if (kp.rank !== 3 || kp.shape[2] !== 3) throw new Error(`${name} must be keypoints [N, K, 3], got shape ${JSON.stringify(kp.shape)}`);
}

function checkRatio(name: string, r: tf.Tensor, n: number, width: number): void {
  if (r.rank !== 2 || r.shape[0] !== n || r.shape[1] !== width)
    throw new Error(`${name} must be [${n}, ${width}], got shape ${JSON.stringify(r.shape)}`);
}

/** Flatten keypoints [N, K, 3] and concatenate with `other` [N, m] along features. */
function concatFeat(kp: tf.Tensor3D, other: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.concat([kp.reshape([kp.shape[0], -1]), other], 1)) as tf.Tensor2D;
}

export class StitchingRetargetingModule {
  readonly stitchingMlp: Mlp;
  readonly lipMlp: Mlp;
  readonly eyeMlp: Mlp;

  constructor(readers: Record<StitchingPart, ParamReader>) {
    this.stitchingMlp = new Mlp(readers.stitching, STITCHING_SIZES.stitching);
    this.lipMlp = new Mlp(readers.lip, STITCHING_SIZES.lip);
    this.eyeMlp = new Mlp(readers.eye, STITCHING_SIZES.eye);
  }

  /** Raw stitching output [N, 65] for source and driving keypoints [N, 21, 3]. */
  stitchDelta(kpSource: tf.Tensor3D, kpDriving: tf.Tensor3D): tf.Tensor2D {
    checkKp('kpSource', kpSource);
    checkKp('kpDriving', kpDriving);
    if (kpSource.shape.join() !== kpDriving.shape.join())
      throw new Error(`kpSource ${JSON.stringify(kpSource.shape)} and kpDriving ${JSON.stringify(kpDriving.shape)} must have the same shape`);
    return tf.tidy(() => this.stitchingMlp.apply(concatFeat(kpSource, kpDriving.reshape([kpDriving.shape[0], -1]) as tf.Tensor2D)));
  }

  /** Stitched driving keypoints: the offset added to all coordinates, (tx, ty) to x and y. */
  stitching(kpSource: tf.Tensor3D, kpDriving: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const delta = this.stitchDelta(kpSource, kpDriving);
      const [n, k] = kpDriving.shape;
      const dExp = tf.slice(delta, [0, 0], [n, 3 * k]).reshape([n, k, 3]);
      const dTxTy = tf.slice(delta, [0, 3 * k], [n, 2]);
      const dT = tf.concat([dTxTy, tf.zeros([n, 1])], 1).reshape([n, 1, 3]);
      return tf.add(tf.add(kpDriving, dExp), dT) as tf.Tensor3D;
    });
  }

  /** Eye retargeting offset [N, 21, 3] for keypoints x_s and ratios [c_s,eyes (2), c_d,eyes (1)]. */
  retargetEye(kpSource: tf.Tensor3D, eyeRatio: tf.Tensor2D): tf.Tensor3D {
    checkKp('kpSource', kpSource);
    checkRatio('eye ratio', eyeRatio, kpSource.shape[0], 3);
    return tf.tidy(() => this.eyeMlp.apply(concatFeat(kpSource, eyeRatio)).reshape(kpSource.shape)) as tf.Tensor3D;
  }

  /** Lip retargeting offset [N, 21, 3] for keypoints x_s and ratios [c_s,lip, c_d,lip]. */
  retargetLip(kpSource: tf.Tensor3D, lipRatio: tf.Tensor2D): tf.Tensor3D {
    checkKp('kpSource', kpSource);
    checkRatio('lip ratio', lipRatio, kpSource.shape[0], 2);
    return tf.tidy(() => this.lipMlp.apply(concatFeat(kpSource, lipRatio)).reshape(kpSource.shape)) as tf.Tensor3D;
  }

  dispose(): void {
    this.stitchingMlp.dispose();
    this.lipMlp.dispose();
    this.eyeMlp.dispose();
  }
}
